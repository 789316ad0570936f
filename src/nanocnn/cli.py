"""The `nanocnn` command: train, evaluate, predict, summary and plot. Bad input: one line, exit status 2."""
import argparse
import os
import sys

import numpy as np

USAGE_ERROR = 2


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (not usage text) and goes through our error path."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def integer(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    return value


def number(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None


def build_parser():
    from .presets import PRESETS

    parser = Parser(prog="nanocnn", description="A convolutional neural network from scratch in NumPy.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    t = sub.add_parser("train", help="train a preset on MNIST or your data")
    t.add_argument("--preset", help=f"architecture and hyperparameters: {', '.join(PRESETS)} "
                                                   f"(default: default)")
    t.add_argument("--data", help="an .npz (trainimages, trainlabels, testimages, testlabels) or a folder of "
                                  "the four IDX files (default: the bundled MNIST)")
    t.add_argument("--epochs", type=integer)
    t.add_argument("--batch-size", type=integer)
    t.add_argument("--lr", type=number, help="learning rate")
    t.add_argument("--optimizer", help="sgd or adam")
    t.add_argument("--momentum", type=number, help="SGD momentum")
    t.add_argument("--weight-decay", type=number)
    t.add_argument("--schedule", help="learning-rate schedule: constant or cosine")
    t.add_argument("--seed", type=integer, help="seed of the one random generator (default 0)")
    t.add_argument("--limit-train", type=integer, help="use the first N training images")
    t.add_argument("--limit-test", type=integer, help="use the first N test images")
    t.add_argument("--threads", type=integer, help="threads to train with (default: every usable CPU, at most 8); "
                                                   "the results do not depend on it")
    t.add_argument("--out", help="run folder (default runs/<timestamp>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out (default: the latest)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = sub.add_parser("evaluate", help="accuracy, per-class accuracy and confusion matrix of a saved model")
    e.add_argument("model", help="a model.npz, or a run folder holding one")
    e.add_argument("--data", help="as for train (default: the bundled MNIST test set)")
    e.add_argument("--limit-test", type=integer)
    e.add_argument("--threads", type=integer, help="threads to run on (default: every usable CPU, at most 8)")

    p = sub.add_parser("predict", help="classify PNG or JPEG images")
    p.add_argument("model", help="a model.npz, or a run folder holding one")
    p.add_argument("images", nargs="+", metavar="IMAGE")

    s = sub.add_parser("summary", help="layers, output shapes, parameters and multiply-adds")
    s.add_argument("model", nargs="?", help="a model.npz or run folder (default: the preset)")
    s.add_argument("--preset", help="a preset, shown for MNIST-sized input (default: default)")

    plot = sub.add_parser("plot", help="draw a PNG: curves, filters, features, confusion or mistakes")
    kinds = plot.add_subparsers(dest="kind", required=True, parser_class=Parser)
    k = kinds.add_parser("curves", help="train and test loss and accuracy per epoch")
    k.add_argument("run", metavar="RUN_DIR")
    k = kinds.add_parser("filters", help="the first conv layer's filters; deeper conv layers summarised")
    k.add_argument("model", metavar="MODEL")
    k = kinds.add_parser("features", help="one image's feature maps after every conv layer")
    k.add_argument("model", metavar="MODEL")
    which = k.add_mutually_exclusive_group(required=True)
    which.add_argument("--index", type=integer, help="a test image of --data, by index")
    which.add_argument("--image", help="a PNG or JPEG file")
    for name, text in (("confusion", "the confusion matrix as a heat map"),
                       ("mistakes", "the most confident wrong test predictions")):
        k = kinds.add_parser(name, help=text)
        k.add_argument("model", metavar="MODEL")
    for k in kinds.choices.values():
        k.add_argument("-o", "--output", help="PNG file to write (default: beside the model or run)")
        if k.prog.split()[-1] in ("features", "confusion", "mistakes"):
            k.add_argument("--data", help="as for train (default: the bundled MNIST test set)")
            k.add_argument("--limit-test", type=integer)
    return parser


def model_file(path):
    return os.path.join(path, "model.npz") if os.path.isdir(path) else path


def load_model(path, need_meta=True):
    """(model, meta) from a model file or run folder; meta must record the input shape and classes."""
    from .model import load

    model, meta, _ = load(model_file(path))
    if need_meta and not {"input_shape", "num_classes"} <= set(meta):
        raise ValueError(f"{path} does not record its input shape and classes: save it with `nanocnn train`, or "
                         f"nc.save(path, model, meta={{'input_shape': [C, H, W], 'num_classes': K}})")
    return model, meta


def cmd_train(args):
    from .config import Config
    from .train import fit

    config = Config(preset=args.preset, data=args.data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                    optimizer=args.optimizer, momentum=args.momentum, weight_decay=args.weight_decay,
                    schedule=args.schedule, seed=args.seed, limit_train=args.limit_train, limit_test=args.limit_test,
                    threads=args.threads)
    model, run, test_acc = fit(config, out=args.out, resume=args.resume, overwrite=args.overwrite,
                               progress=not args.no_progress)
    print(f"saved {run.model_path}")
    from .plots import curves_if_available
    curves = curves_if_available(run.path)
    if curves:
        print(f"learning curves: {curves}")
    print(f"test accuracy: {test_acc:.4f}")


def cmd_evaluate(args):
    from .parallel import check_threads
    from .train import confusion_matrix, evaluate

    threads = check_threads(args.threads)
    model, meta = load_model(args.model)
    data, classes = load_test_split(args, model, meta)
    loss, acc, predicted = evaluate(model, data.test, threads=threads)
    matrix = confusion_matrix(data.test.labels, predicted, classes)
    print(f"model: {model_file(args.model)}")
    print(f"data: {data.source}: {len(data.test.labels):,} test images")
    print(f"loss: {loss:.4f}")
    print("per-class accuracy:")
    for k in range(classes):
        total = matrix[k].sum()
        print(f"  {k}: {matrix[k, k] / total:.4f} ({matrix[k, k]}/{total})" if total else f"  {k}: no images")
    width = max(5, len(str(matrix.max())) + 1)
    print("confusion matrix (rows: true class, columns: predicted):")
    print(" " * 4 + "".join(f"{k:>{width}}" for k in range(classes)))
    for k in range(classes):
        print(f"{k:>4}" + "".join(f"{v:>{width}}" for v in matrix[k]))
    print(f"test accuracy: {acc:.4f}")


def check_fits(model, meta, input_shape):
    """Raise ValueError when the model was trained on another image shape than the data's."""
    expected = tuple(meta["input_shape"])
    if expected != tuple(input_shape):
        raise ValueError(f"the model takes images of shape {expected} (C, H, W), the data has {tuple(input_shape)}")
    model.output_shape(tuple(input_shape))


def cmd_predict(args):
    from .images import load_image
    from .train import predict_proba

    model, meta = load_model(args.model)
    shape = tuple(meta["input_shape"])
    images = np.stack([load_image(path, shape) for path in args.images])   # every file is read before output
    proba = predict_proba(model, images)
    for path, p in zip(args.images, proba):
        top = np.argsort(-p, kind="stable")[:3]
        print(f"{path}: " + ", ".join(f"{k} ({p[k]:.3f})" for k in top))


def cmd_summary(args):
    from .presets import get_preset

    if args.model and args.preset:
        raise ValueError("summary takes a MODEL or --preset, not both")
    if args.model:
        model, meta = load_model(args.model)
        shape = tuple(meta["input_shape"])
        print(f"model: {model_file(args.model)}")
    else:
        shape, name = (1, 28, 28), args.preset or "default"
        model = get_preset(name).build(shape, 10, np.random.default_rng(0))
        print(f"preset: {name} ({get_preset(name).description}), for 1x28x28 images and 10 classes")
    print(model.summary(shape))


def load_test_split(args, model, meta):
    """The test split of --data (default: the bundled MNIST) for a model, checked to fit it."""
    from .data import load_dataset

    classes = meta["num_classes"]
    data = load_dataset(args.data, limit_test=args.limit_test, num_classes=classes, with_train=False)
    check_fits(model, meta, data.input_shape)
    return data, classes


def cmd_plot(args):
    from . import plots
    from .train import confusion_matrix, evaluate, predict_proba

    plots.pyplot()                                                   # a missing matplotlib fails first
    if args.kind == "curves":
        print(plots.plot_curves(args.run, args.output))
        return
    model, meta = load_model(args.model, need_meta=args.kind != "filters")
    out = args.output or os.path.join(os.path.dirname(model_file(args.model)) or ".", f"{args.kind}.png")
    if args.kind == "filters":
        print(plots.plot_filters(model, out))
    elif args.kind == "features":
        if args.image:
            from .images import load_image
            image, title = load_image(args.image, tuple(meta["input_shape"])), args.image
        else:
            data, _ = load_test_split(args, model, meta)
            if args.index >= len(data.test.labels):
                raise ValueError(f"--index must be below the {len(data.test.labels)} test images, got {args.index}")
            image, title = data.test.images[args.index], f"test image {args.index} (label {data.test.labels[args.index]})"
        print(plots.plot_features(model, image, title, out))
    elif args.kind == "confusion":
        data, classes = load_test_split(args, model, meta)
        _, acc, predicted = evaluate(model, data.test)
        print(plots.plot_confusion(confusion_matrix(data.test.labels, predicted, classes), acc, out))
    elif args.kind == "mistakes":
        data, _ = load_test_split(args, model, meta)
        print(plots.plot_mistakes(data.test.images, data.test.labels, predict_proba(model, data.test.images), out))
    else:
        raise ValueError(f"unknown plot {args.kind!r}")


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "summary": cmd_summary,
            "plot": cmd_plot}


def main(argv=None):
    """Entry point; returns the exit status. Errors in the user's input: one line on stderr, status 2."""
    try:
        args = build_parser().parse_args(argv)
        COMMANDS[args.command](args)
    except (UsageError, ValueError, OSError, MemoryError) as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"error: {message}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("interrupted (a run can be continued with: nanocnn train --resume --out DIR)", file=sys.stderr)
        return 130
    return 0
