"""The one list of a run's settings: each field's default, help text, type and check, read by the CLI too.

A Config holds what was given; ``presets.resolve`` fills in the rest from the preset and the fallbacks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..nn.optim import OPTIMIZERS, SCHEDULES
from ..validation import UserError, check_choice, check_int, check_real


def setting(help, fallback=None, kind=str, check=None, metavar=None, run=True, resumable=False):
    """A Config field; None means "not given": the preset's value, else ``fallback``, is used.

    kind: the type a command-line value is read as (str, int, float or bool); check(value, name)
    raises UserError for an impossible value. run=False marks a setting of the machine rather than
    the run (never saved, free to change on --resume); resumable=True one that --resume may change.
    """
    meta = dict(help=help, fallback=fallback, kind=kind, check=check, metavar=metavar, run=run, resumable=resumable)
    return field(default=None, metadata=meta)


def int_at_least(low):
    """The check of an integer setting >= low."""
    return lambda v, name: check_int(v, name, low)


def real_in(low, high=None, low_open=False, high_open=False):
    """The check of a real setting within the bounds."""
    return lambda v, name: check_real(v, name, low, high, low_open, high_open)


def true_or_false(v, name):
    """The check of a yes/no setting."""
    if not isinstance(v, bool):
        raise UserError(f"{name} must be true or false, got {v!r}")
    return v


def one_of(options):
    """The check of a setting that names one of ``options``."""
    return lambda v, name: check_choice(v, name, options)


@dataclass
class Config:
    """A training run. Fields left None take the preset's value, else the field's fallback, when resolved."""

    preset: str = setting(
        "architecture and hyperparameters (see `nanocnn summary --preset NAME`)", "default", metavar="NAME"
    )
    data: str = setting(
        "an .npz (trainimages, trainlabels, testimages, testlabels) or a folder of the four IDX "
        "files (default: the bundled MNIST)",
        metavar="PATH",
    )
    epochs: int = setting("passes over the training set", kind=int, check=int_at_least(1), metavar="N", resumable=True)
    batch_size: int = setting("images per optimizer step", kind=int, check=int_at_least(1), metavar="N")
    lr: float = setting("learning rate", kind=float, check=real_in(0, low_open=True), metavar="X")
    optimizer: str = setting("the optimizer", check=one_of(OPTIMIZERS), metavar="|".join(OPTIMIZERS))
    momentum: float = setting("SGD momentum", 0.0, float, real_in(0, 1, high_open=True), "X")
    weight_decay: float = setting("L2 penalty added to the gradient", 0.0, float, real_in(0), "X")
    schedule: str = setting(
        "learning-rate schedule: cosine decays to 0 over the run; onecycle warms up for 30%, then decays",
        "constant",
        check=one_of(SCHEDULES),
        metavar="|".join(SCHEDULES),
    )
    part_size: int = setting(
        "images per part of a batch, at least: the unit one thread or MPI rank computes (a batch of N images "
        "is max(1, N // part-size) parts); like --batch-size it changes the numbers, never the thread count",
        32,
        int,
        int_at_least(1),
        "N",
    )
    shuffle: bool = setting("shuffle the training set every epoch", True, bool, true_or_false)
    augment: bool = setting(
        "random shifts of up to 2 pixels, rotations of up to 10 degrees and scalings of up to 10% of each "
        "training image, drawn from the run's generator",
        False,
        bool,
        true_or_false,
    )
    seed: int = setting("seed of the run's one random generator", 0, int, int_at_least(0), "N")
    limit_train: int = setting("use the first N training images", kind=int, check=int_at_least(1), metavar="N")
    limit_test: int = setting("use the first N test images", kind=int, check=int_at_least(1), metavar="N")
    threads: int = setting(
        "threads per process (default: every usable CPU, at most 8; with --distributed, the "
        "rank's share of its machine's); changes the speed, never the numbers",
        kind=int,
        check=int_at_least(1),
        metavar="N",
        run=False,
    )

    def check(self) -> None:
        """Raise UserError naming the first impossible setting and its value (None passes: not given)."""
        for f in fields(self):
            value, check = getattr(self, f.name), f.metadata["check"]
            if value is not None and check is not None:
                check(value, option(f.name))

    def to_dict(self) -> dict:
        """The run's settings, as saved in config.json and checkpoints (machine settings left out)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata["run"]}

    @classmethod
    def from_dict(cls, values: dict) -> Config:
        """The inverse of to_dict; machine settings saved by older versions are dropped, and run settings they
        did not have yet take the value those versions used (their fallback: --part-size 32, no --augment)."""
        run = {f.name: f for f in fields(cls) if f.metadata["run"]}
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise UserError(f"unknown config keys {unknown}")
        given = {k: v for k, v in values.items() if k in run}
        if given:  # a saved run: every setting it trained with, the newer ones at their old behaviour
            given.update(
                {
                    k: f.metadata["fallback"]
                    for k, f in run.items()
                    if k not in given and f.metadata["fallback"] is not None
                }
            )
        return cls(**given)

    def __str__(self):
        return "config: " + ", ".join(f"{k}={v}" for k, v in asdict(self).items() if k in self.to_dict())


def option(name: str) -> str:
    """A field's name as the command line spells it: batch_size -> batch-size."""
    return name.replace("_", "-")
