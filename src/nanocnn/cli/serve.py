"""`nanocnn serve`: a web page to draw digits for a saved model and see how it computes every number, both ways."""

import math
import os
import sys

from ..validation import UserError
from .common import add_data_options, check_address, load_model, load_test_split, model_file, parse_int

MNIST_SHAPE = (1, 28, 28)


def register(sub):
    s = sub.add_parser(
        "serve",
        help="a local web page: draw a digit, see every layer and how each number was computed",
        description="Serve a page where you draw a digit and watch the model: its prediction, every layer's "
        "output and how each number was computed, the backward pass, one step of teaching, and the output-size "
        "formula. Ctrl-C stops it.",
    )
    s.add_argument("model", help="a model.npz, or a run folder holding one (a 1-channel model)")
    s.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0: every network)",
    )
    s.add_argument("--port", type=parse_int, default=8000, help="port (default: 8000; 0: any free port)")
    add_data_options(s)
    s.add_argument(
        "--threads",
        type=parse_int,
        metavar="N",
        help="requests computed at once (default: every usable CPU, at most 8)",
    )
    s.add_argument("--quiet", action="store_true", help="log only errors, not every request")
    s.set_defaults(run=run)


def run(args):
    try:
        serve_model(args)
    except KeyboardInterrupt:  # Ctrl-C before the server was listening
        print("stopped", file=sys.stderr)


def serve_model(args):
    from ..parallel import resolve_threads
    from ..serve import serve

    check_address(args)
    resolve_threads(args.threads)  # a bad --threads fails before anything listens
    model, meta = load_model(args.model)
    shape = tuple(meta["input_shape"])
    if len(shape) != 3 or shape[0] != 1:
        raise UserError(
            f"serve draws greyscale digits, so it needs a 1-channel model; {args.model} takes images "
            f"of shape {shape} (C, H, W)"
        )
    model.output_shape(shape)  # a model that does not fit its own input shape fails here
    serve(lambda: make_api(args, model, meta), args.host, args.port, args.quiet)


def make_api(args, model, meta):
    """The API for the model, with the test split of --data (default: the bundled MNIST, when it fits)."""
    from ..parallel import resolve_threads
    from ..serve import Api, Samples
    from ..train.evaluation import predict_proba

    threads = resolve_threads(args.threads)
    shape, samples = tuple(meta["input_shape"]), None
    if args.data is None and (shape != MNIST_SHAPE or meta["num_classes"] < 10):
        print(
            f"note: the bundled MNIST does not fit this model (input {shape}, {meta['num_classes']} classes), "
            "so there are no test images to show; give some with --data PATH",
            file=sys.stderr,
        )
    else:
        data, _ = load_test_split(args, model, meta)
        proba = predict_proba(model, data.test.images, threads)
        source = "the bundled MNIST" if args.data is None else os.path.basename(os.path.normpath(args.data))
        samples = Samples(data.test.images, data.test.labels, proba, source)
    path = model_file(args.model)  # shown as "run/model.npz" or "model.npz": no full path
    folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
    name = f"{folder}/{os.path.basename(path)}" if os.path.isdir(args.model) else os.path.basename(path)
    return Api(model, meta, name, samples, threads, learning_curves(path))


def learning_curves(path):
    """The metrics.csv beside a model file (a run folder's), as the page's curves; None without one."""
    from ..plots import read_metrics

    run_dir = os.path.dirname(os.path.abspath(path))
    if not os.path.isfile(os.path.join(run_dir, "metrics.csv")):
        return None
    try:
        metrics = read_metrics(run_dir)
    except UserError as e:
        print(f"note: no learning curves: {e}", file=sys.stderr)
        return None
    if not metrics or len(metrics.get("epoch", ())) == 0:
        return None
    columns = {k: [float(v) if math.isfinite(v) else None for v in values] for k, values in metrics.items()}
    return {"source": f"{os.path.basename(run_dir)}/metrics.csv", "metrics": columns}
