"""`nanocnn evaluate`, `predict` and `summary`: what a saved model does, on data, on image files, and in size."""

import numpy as np

from ..validation import UserError
from .common import add_data_options, load_model, load_test_split, model_file, parse_int


def register(sub):
    e = sub.add_parser("evaluate", help="accuracy, per-class accuracy and confusion matrix of a saved model")
    e.add_argument("model", help="a model.npz, or a run folder holding one")
    add_data_options(e)
    e.add_argument("--threads", type=parse_int, metavar="N", help="threads (default: every usable CPU, at most 8)")
    e.set_defaults(run=run_evaluate)

    p = sub.add_parser("predict", help="classify PNG or JPEG images")
    p.add_argument("model", help="a model.npz, or a run folder holding one")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(run=run_predict)

    s = sub.add_parser("summary", help="layers, output shapes, parameters and multiply-adds")
    s.add_argument("model", nargs="?", help="a model.npz or run folder (default: the preset)")
    s.add_argument("--preset", help="a preset, shown for MNIST-sized input (default: default)")
    s.set_defaults(run=run_summary)


def run_evaluate(args):
    from ..parallel import resolve_threads
    from ..train.evaluation import confusion_matrix, evaluate

    threads = resolve_threads(args.threads)
    model, meta = load_model(args.model)
    data, classes = load_test_split(args, model, meta)
    loss, acc, predicted = evaluate(model, data.test, threads)
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


def run_predict(args):
    from ..data import is_blank, load_image
    from ..train.evaluation import predict_proba

    model, meta = load_model(args.model)
    shape = tuple(meta["input_shape"])
    images = np.stack([load_image(path, shape) for path in args.images])  # every file is read before output
    proba = predict_proba(model, images)
    for path, image, p in zip(args.images, images, proba):
        if is_blank(image):  # as on the serve page: nothing to classify, no guess
            print(f"{path}: blank (no ink once prepared): no prediction")
            continue
        top = np.argsort(-p, kind="stable")[:3]
        print(f"{path}: " + ", ".join(f"{k} ({p[k]:.3f})" for k in top))


def run_summary(args):
    from ..train.presets import get_preset

    if args.model and args.preset:
        raise UserError("summary takes a MODEL or --preset, not both")
    if args.model:
        model, meta = load_model(args.model)
        shape = tuple(meta["input_shape"])
        print(f"model: {model_file(args.model)}")
    else:
        shape, name = (1, 28, 28), args.preset or "default"
        model = get_preset(name).build(shape, 10, np.random.default_rng(0))
        print(f"preset: {name} ({get_preset(name).description}), for 1x28x28 images and 10 classes")
    print(model.summary(shape))
