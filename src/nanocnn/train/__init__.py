"""Training a model and measuring it: the settings (config.py), the named recipes (presets.py), the loop
(loop.py), the run folder and its checkpoints (runs.py), and evaluation on a test set (evaluation.py)."""

from .config import Config
from .evaluation import confusion_matrix, evaluate, predict_logits, predict_proba, ranked_mistakes
from .loop import Training, fit, make_optimizer, setup, train_epoch, train_step
from .presets import PRESETS, Preset, get_preset, resolve
from .runs import Run

__all__ = [
    "PRESETS",
    "Config",
    "Preset",
    "Run",
    "Training",
    "confusion_matrix",
    "evaluate",
    "fit",
    "get_preset",
    "make_optimizer",
    "predict_logits",
    "predict_proba",
    "ranked_mistakes",
    "resolve",
    "setup",
    "train_epoch",
    "train_step",
]
