"""A run folder: config.json, metrics.csv and model.npz, the checkpoint written atomically every epoch.

model.npz holds the weights, the architecture, the config, the optimizer state, the epoch, the metrics
so far and the random generator's state, so ``--resume`` continues exactly where the run stopped.
"""

import csv
import io
import json
import os
import time
from dataclasses import fields

from ..io.checkpoint import read, save
from ..io.files import atomic_write
from ..validation import UserError
from .config import Config, option

CHECKPOINT = "model.npz"
RUNS_ROOT = "runs"


def latest_run(root=RUNS_ROOT):
    """The most recently modified run folder under ``root`` that has a checkpoint."""
    candidates = [os.path.join(root, d) for d in os.listdir(root)] if os.path.isdir(root) else []
    candidates = [d for d in candidates if os.path.isfile(os.path.join(d, CHECKPOINT))]
    if not candidates:
        raise UserError(f"--resume: no run with a {CHECKPOINT} under {root}/; pass --out DIR")
    return max(candidates, key=lambda d: os.path.getmtime(os.path.join(d, CHECKPOINT)))


class Run:
    """A run folder: its path, the run's config and, when resuming, the checkpoint read from it (io.Saved)."""

    def __init__(self, path, config, checkpoint=None):
        self.path, self.config, self.checkpoint = path, config, checkpoint

    @property
    def model_path(self):
        return os.path.join(self.path, CHECKPOINT)

    @classmethod
    def create(cls, out, config, overwrite=False):
        """A new run folder (default runs/<timestamp>); refuses to reuse one that holds files unless overwrite."""
        if out is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            out, k = os.path.join(RUNS_ROOT, stamp), 1
            while os.path.exists(out):
                out, k = os.path.join(RUNS_ROOT, f"{stamp}-{k}"), k + 1
        if os.path.exists(out) and not os.path.isdir(out):
            raise UserError(f"--out {out} is a file, not a folder")
        if os.path.isdir(out) and os.listdir(out) and not overwrite:
            raise UserError(
                f"run folder {out} already exists and is not empty; "
                f"pass --resume to continue it or --overwrite to replace it"
            )
        try:
            os.makedirs(out, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create run folder {out}: {e.strerror}") from None
        run = cls(out, config)
        atomic_write(
            os.path.join(out, "config.json"), lambda f: f.write(json.dumps(config.to_dict(), indent=2) + "\n"), mode="w"
        )
        return run

    @classmethod
    def resume(cls, out, given):
        """Open the run at ``out`` (default: the latest under runs/) and merge the options given now.

        Only resumable settings (--epochs, to train longer) and the machine's (--threads, which never
        changes the numbers) may change; any other option that differs from the saved config is an
        error: continuing would not be the same run.
        """
        out = latest_run() if out is None else out
        path = os.path.join(out, CHECKPOINT)
        if not os.path.isfile(path):
            raise UserError(f"--resume: {out} has no {CHECKPOINT} to resume from")
        checkpoint = read(path)
        meta = checkpoint.meta
        missing = sorted({"config", "epoch", "metrics", "rng", "input_shape", "num_classes"} - set(meta))
        if missing or not isinstance(meta["config"], dict):
            raise UserError(f"--resume: {path} is not a training checkpoint (its metadata lacks {missing or 'config'})")
        try:
            config = Config.from_dict(meta["config"])
        except TypeError as e:
            raise UserError(f"--resume: {path} has a bad config: {e}") from None
        free = [option(f.name) for f in fields(Config) if f.metadata["resumable"] or not f.metadata["run"]]
        for f in fields(Config):
            value, before = getattr(given, f.name), getattr(config, f.name)
            if value is None or value == before:
                continue
            if option(f.name) not in free:
                raise UserError(
                    f"--resume: --{option(f.name)} {value} differs from the run's {before}; "
                    f"only {' and '.join('--' + name for name in free)} may change"
                )
            setattr(config, f.name, value)
        if config.epochs < meta["epoch"]:
            raise UserError(f"--resume: --epochs {config.epochs} is below the {meta['epoch']} epochs already trained")
        config.check()
        return cls(out, config, checkpoint)

    def restore(self, model, optimizer, rng, data):
        """Load the checkpoint's weights, optimizer state and generator state; returns (epoch, metrics)."""
        meta, arrays = self.checkpoint.meta, self.checkpoint.arrays
        if tuple(meta["input_shape"]) != tuple(data.input_shape) or meta["num_classes"] != data.num_classes:
            raise UserError(
                f"--resume: the run was trained on images {tuple(meta['input_shape'])} with "
                f"{meta['num_classes']} classes, the data has {tuple(data.input_shape)} and "
                f"{data.num_classes}"
            )
        model.load_state_dict(self.checkpoint.model.state_dict())
        optimizer.load_state_dict({k[len("optim/") :]: v for k, v in arrays.items() if k.startswith("optim/")})
        rng.bit_generator.state = meta["rng"]
        self.checkpoint = None
        return meta["epoch"], meta["metrics"]

    def save(self, model, optimizer, rng, data, metrics):
        """Write the checkpoint for the epoch just finished, then metrics.csv; each atomically."""
        meta = dict(
            config=self.config.to_dict(),
            epoch=metrics[-1]["epoch"],
            metrics=metrics,
            rng=rng.bit_generator.state,
            input_shape=list(data.input_shape),
            num_classes=data.num_classes,
            preset=self.config.preset,
        )
        arrays = {f"optim/{k}": v for k, v in optimizer.state_dict().items()}
        save(model, self.model_path, meta, arrays)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(metrics[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(metrics)
        atomic_write(os.path.join(self.path, "metrics.csv"), lambda f: f.write(buffer.getvalue()), mode="w")
