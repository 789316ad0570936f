"""`nanocnn train`: its options are the fields of ``Config``, with their help, types and defaults."""

import argparse
import sys
import time
from dataclasses import fields

from ..train.config import Config, option
from .common import check_address, parse_float, parse_int

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
        text = text.replace("%", "%%")  # argparse formats help with %
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
    live = t.add_argument_group("watching the run in a browser")
    live.add_argument(
        "--live",
        action="store_true",
        help="serve a page that shows the training as it happens: the loss, accuracy on a probe of test "
        "images, the first layer's filters, test digits and their predictions (same weights as without)",
    )
    live.add_argument("--host", default="127.0.0.1", help="--live: address to listen on (default: 127.0.0.1)")
    live.add_argument("--port", type=parse_int, default=8000, help="--live: port (default: 8000; 0: any free port)")
    live.add_argument(
        "--keep-serving",
        action="store_true",
        help="--live: keep the page up after training, until Ctrl-C (default: stop when training ends)",
    )


def run(args):
    config = Config(**{f.name: getattr(args, f.name) for f in fields(Config)})
    if args.distributed:  # mpi4py is imported only here
        from ..parallel.mpi import launch

        launch(lambda world: train(config, args, world))
    else:
        train(config, args)


def train(config, args, world=None):
    """fit, then the closing lines (rank 0 only: the other ranks of an MPI job print nothing). With --live,
    rank 0 listens first (a port in use fails before anything is trained) and serves the page meanwhile."""
    from ..parallel import LOCAL
    from ..train import fit

    world = world or LOCAL
    live = server = None  # rank 0's, with --live: objects no other rank needs (on_root shares only the outcome)

    def open_page():
        nonlocal live, server
        live, server = listen(args)

    if args.live:
        world.on_root(open_page)
    if server is not None:
        from ..serve.live import stop_server
    try:
        model, run, test_acc = fit(
            config,
            out=args.out,
            resume=args.resume,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            world=world,
            watch=live,
        )
        if world.is_root:
            closing_lines(run, test_acc)
        if server is not None and args.keep_serving:
            print(f"training done; the page stays up at {server.url(args.host)} until Ctrl-C", flush=True)
            wait_for_ctrl_c()
    except BaseException:
        if server is not None:  # Ctrl-C or an error: stop at once
            stop_server(server, live, grace=0)
        raise
    if server is not None:  # a watching page gets the final state first
        stop_server(server, live)


def listen(args):
    from ..serve.live import start_server
    from ..serve.server import warn_if_exposed

    check_address(args)
    live, server = start_server(args.host, args.port)
    warn_if_exposed(args.host)
    print(f"watching on {server.url(args.host)}", flush=True)
    return live, server


def wait_for_ctrl_c():
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr, flush=True)


def closing_lines(run, test_acc):
    from ..plots import curves_if_available

    print(f"saved {run.model_path}")
    curves = curves_if_available(run.path)
    if curves:
        print(f"learning curves: {curves}")
    print(f"test accuracy: {test_acc:.4f}")
