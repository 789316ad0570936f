"""The one config object: every hyperparameter of a run, its defaults, and its checks."""
import math
from dataclasses import asdict, dataclass, fields

from .optim import OPTIMIZERS
from .parallel import check_threads
from .presets import get_preset

SCHEDULES = ("constant", "cosine")


@dataclass
class Config:
    """A training run. Fields left None take the preset's value when the config is resolved."""
    preset: str = None          # None: "default"
    data: str = None            # .npz or IDX folder; None: the bundled MNIST
    epochs: int = None
    batch_size: int = None
    lr: float = None
    optimizer: str = None       # "sgd" or "adam"
    momentum: float = None
    weight_decay: float = None
    schedule: str = None        # "constant" or "cosine"
    shuffle: bool = None
    seed: int = None            # None: 0
    limit_train: int = None
    limit_test: int = None
    threads: int = None         # None: every usable CPU, at most 8; changes the speed, never the numbers

    def resolved(self):
        """A copy with every None replaced by the preset's value, checked."""
        values = asdict(self)
        values["preset"] = values["preset"] or "default"
        values["seed"] = 0 if values["seed"] is None else values["seed"]
        values["threads"] = check_threads(values["threads"])
        preset = get_preset(values["preset"])
        for f in fields(self):
            if values[f.name] is None and hasattr(preset, f.name):
                values[f.name] = getattr(preset, f.name)
        config = Config(**values)
        config.check()
        return config

    def check(self):
        """Raise ValueError naming the first impossible setting and its value."""
        def whole(name, low):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < low):
                raise ValueError(f"{name.replace('_', '-')} must be an integer >= {low}, got {v!r}")
        whole("epochs", 1)
        whole("batch_size", 1)
        whole("seed", 0)
        whole("limit_train", 1)
        whole("limit_test", 1)
        whole("threads", 1)
        for name, low, strict in (("lr", 0, True), ("momentum", 0, False), ("weight_decay", 0, False)):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < low or (strict and v == low):
                raise ValueError(f"{name.replace('_', '-')} must be a finite number {'>' if strict else '>='} "
                                 f"{low}, got {v!r}")
        if self.momentum >= 1:
            raise ValueError(f"momentum must be < 1, got {self.momentum!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, values):
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}")
        return cls(**values)

    def __str__(self):
        return "config: " + ", ".join(f"{k}={v}" for k, v in asdict(self).items())
