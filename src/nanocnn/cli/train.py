"""`nanocnn train`: its options are the fields of ``Config``, with their help, types and defaults."""

import argparse
from dataclasses import fields

from ..train.config import Config, option
from .common import parse_float, parse_int

KINDS = {int: parse_int, float: parse_float, str: str}


def register(sub):
    from ..train.presets import PRESETS

    t = sub.add_parser(
        "train",
        help="train a preset on MNIST or your data",
        description="Train a preset. Options left out take the preset's value.",
    )
    t.set_defaults(run=run)
    for f in fields(Config):
        meta = f.metadata
        given = {name: getattr(p.defaults, f.name) for name, p in PRESETS.items()}
        if any(v is not None for v in given.values()):
            default = ", ".join(f"{v} in preset {name}" for name, v in given.items() if v is not None)
            default += f", else {meta['fallback']}" if meta["fallback"] is not None else ""
        else:
            default = None if meta["fallback"] is None else str(meta["fallback"])
        text = meta["help"] + (f" (default: {default})" if default else "")
        if f.name == "preset":
            text = f"{meta['help']}: {', '.join(PRESETS)} (default: {meta['fallback']})"
        if meta["kind"] is bool:
            t.add_argument(f"--{option(f.name)}", action=argparse.BooleanOptionalAction, help=text)
        else:
            t.add_argument(f"--{option(f.name)}", type=KINDS[meta["kind"]], metavar=meta["metavar"], help=text)
    t.add_argument("--out", metavar="DIR", help="run folder (default: runs/<timestamp>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out (default: the latest)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument(
        "--distributed",
        action="store_true",
        help="be one rank of an MPI job: mpiexec -n K nanocnn train --distributed [options] trains on K "
        "processes or machines, to the same weights as one process (needs pip install 'nanocnn[mpi]')",
    )


def run(args):
    config = Config(**{f.name: getattr(args, f.name) for f in fields(Config)})
    if args.distributed:  # mpi4py is imported only here
        from ..parallel.mpi import launch

        launch(lambda world: train(config, args, world))
    else:
        train(config, args)


def train(config, args, world=None):
    """fit, then the closing lines (rank 0 only: the other ranks of an MPI job print nothing)."""
    from ..parallel import LOCAL
    from ..plots import curves_if_available
    from ..train import fit

    world = world or LOCAL
    model, run, test_acc = fit(
        config, out=args.out, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress, world=world
    )
    if not world.is_root:
        return
    print(f"saved {run.model_path}")
    curves = curves_if_available(run.path)
    if curves:
        print(f"learning curves: {curves}")
    print(f"test accuracy: {test_acc:.4f}")
