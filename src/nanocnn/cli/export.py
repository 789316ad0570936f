"""`nanocnn export` and `nanocnn import`: a saved model to ONNX or safetensors, and safetensors weights back."""

from ..validation import UserError
from .common import load_model, model_file


def register(sub):
    e = sub.add_parser(
        "export",
        help="write a saved model as ONNX (onnxruntime) or safetensors (PyTorch)",
        description="Write MODEL as OUT.onnx (the whole network; needs pip install 'nanocnn[export]') "
        "or OUT.safetensors (the weights under PyTorch's names, the architecture in its "
        "metadata).",
    )
    e.add_argument("model", help="a model.npz, or a run folder holding one")
    e.add_argument("out", metavar="OUT", help="the file to write: ending in .onnx or .safetensors")
    e.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    e.set_defaults(run=run_export)

    i = sub.add_parser(
        "import",
        help="turn safetensors weights (from nanocnn or PyTorch) into a nanocnn model",
        description="Load WEIGHTS.safetensors into the architecture of --preset or --like MODEL "
        "(a file written by `nanocnn export` carries its own) and save it as OUT.npz "
        "for evaluate, plot and serve. PyTorch pickles (.pt/.pth) are never read.",
    )
    i.add_argument("weights", metavar="WEIGHTS", help="a .safetensors file")
    i.add_argument("out", metavar="OUT", help="the model file to write (.npz)")
    which = i.add_mutually_exclusive_group()
    which.add_argument("--preset", help="the architecture: a preset, sized for --data")
    which.add_argument("--like", metavar="MODEL", help="the architecture: that of a saved model")
    i.add_argument(
        "--data",
        metavar="PATH",
        help="with --preset: data whose image shape and classes size it (default: the bundled MNIST)",
    )
    i.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    i.set_defaults(run=run_import)


def run_export(args):
    from ..io import export_model

    model, meta = load_model(args.model)
    print(export_model(model, args.out, meta["input_shape"], meta["num_classes"], overwrite=args.overwrite))


def run_import(args):
    import os

    import numpy as np

    from ..io import load_safetensors, save
    from ..io.export import check_new, check_shapes

    if not args.out.lower().endswith(".npz"):
        raise UserError(f"the model file to write must end in .npz, got {args.out}")
    check_new(args.out, args.overwrite)
    if args.data and not args.preset:
        raise UserError("--data sizes a --preset; it is not used otherwise")
    model, meta = None, {}
    if args.like:
        model, meta = load_model(args.like)
        meta = {"input_shape": meta["input_shape"], "num_classes": meta["num_classes"]}
    elif args.preset:
        from ..data import load_dataset
        from ..train.presets import get_preset

        preset = get_preset(args.preset)
        data = load_dataset(args.data, limit_test=1, with_train=True, limit_train=None)
        model = preset.build(data.input_shape, data.num_classes, np.random.default_rng(0))
        meta = {"input_shape": list(data.input_shape), "num_classes": data.num_classes, "preset": preset.name}
    model, file_meta = load_safetensors(args.weights, model)
    for key in ("input_shape", "num_classes"):
        meta.setdefault(key, file_meta.get(key))
    if meta["input_shape"] is None or meta["num_classes"] is None:
        raise UserError(f"{args.weights} does not record its input shape and classes: give --preset or --like")
    shape, _, classes = check_shapes(model, meta["input_shape"], meta["num_classes"], args.weights)
    meta.update(input_shape=list(shape), num_classes=classes)  # the weights' architecture takes that input
    save(model, args.out, meta={**meta, "imported_from": os.path.abspath(args.weights)})
    print(f"saved {model_file(args.out)}")
