"""`nanocnn plot`: one PNG of learning curves, filters, feature maps, the confusion matrix or the mistakes."""

import os

from ..validation import UserError, check_int
from .common import add_data_options, load_model, load_test_split, model_file, parse_int

KINDS = {
    "curves": "train and test loss and accuracy per epoch",
    "filters": "the first conv layer's filters; deeper conv layers summarised",
    "features": "one image's feature maps after every conv layer",
    "confusion": "the confusion matrix as a heat map",
    "mistakes": "the most confident wrong test predictions",
}


def register(sub):
    plot = sub.add_parser("plot", help="draw a PNG: " + ", ".join(KINDS))
    kinds = plot.add_subparsers(dest="kind", required=True, parser_class=type(plot))
    for kind, text in KINDS.items():
        k = kinds.add_parser(kind, help=text)
        k.set_defaults(run=run)
        if kind == "curves":
            k.add_argument("run_dir", metavar="RUN_DIR")
        else:
            k.add_argument("model", metavar="MODEL", help="a model.npz, or a run folder holding one")
        if kind == "features":
            which = k.add_mutually_exclusive_group(required=True)
            which.add_argument("--index", type=parse_int, help="a test image of --data, by index")
            which.add_argument("--image", help="a PNG or JPEG file")
        if kind in ("features", "confusion", "mistakes"):
            add_data_options(k)
        k.add_argument("-o", "--output", help="PNG file to write (default: beside the model or run)")


def run(args):
    from .. import plots
    from ..train.evaluation import confusion_matrix, evaluate, predict_proba

    plots.pyplot()  # a missing matplotlib fails first
    if args.kind == "curves":
        print(plots.plot_curves(args.run_dir, args.output))
        return
    model, meta = load_model(args.model, need_meta=args.kind != "filters")
    out = args.output or os.path.join(os.path.dirname(model_file(args.model)) or ".", f"{args.kind}.png")
    if args.kind == "filters":
        print(plots.plot_filters(model, out))
    elif args.kind == "features":
        if args.image:
            from ..data import load_image

            image, title = load_image(args.image, tuple(meta["input_shape"])), args.image
        else:
            data, _ = load_test_split(args, model, meta)
            check_int(args.index, "--index", 0)
            if args.index >= len(data.test.labels):
                raise UserError(f"--index must be below the {len(data.test.labels)} test images, got {args.index}")
            image, title = (
                data.test.images[args.index],
                f"test image {args.index} (label {data.test.labels[args.index]})",
            )
        print(plots.plot_features(model, image, title, out))
    elif args.kind == "confusion":
        data, classes = load_test_split(args, model, meta)
        _, acc, predicted = evaluate(model, data.test)
        print(plots.plot_confusion(confusion_matrix(data.test.labels, predicted, classes), acc, out))
    else:  # mistakes
        data, _ = load_test_split(args, model, meta)
        print(plots.plot_mistakes(data.test.images, data.test.labels, predict_proba(model, data.test.images), out))
