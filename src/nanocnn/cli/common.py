"""What the subcommands share: argparse that reports errors as UserError, value parsers, model loading."""

import argparse
import os

from ..validation import UserError, check_int


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (not usage text) and goes through our error path."""

    def error(self, message):
        raise UserError(f"{self.prog}: {message}")


def check_address(args):
    """--host and --port, checked before anything listens."""
    check_int(args.port, "--port", 0, 65535)
    if not args.host.strip():
        raise UserError("--host must be an address or a name, such as 127.0.0.1 or 0.0.0.0, got ''")


def parse_int(text):
    """argparse's type for an integer option: a clear error for anything else."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def parse_float(text):
    """argparse's type for a number option."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None


def model_file(path):
    """A model.npz path, or the run folder holding one."""
    return os.path.join(path, "model.npz") if os.path.isdir(path) else path


def load_model(path, need_meta=True):
    """(model, meta) from a model.npz, a run folder or a .safetensors file written by `nanocnn export`;
    meta must record the input shape and classes. PyTorch pickles are refused, never read."""
    from ..io import load, load_safetensors
    from ..io.safetensors import PICKLE_MESSAGE

    if str(path).lower().endswith((".pt", ".pth")):
        raise UserError(f"{path}: {PICKLE_MESSAGE}")
    if str(path).lower().endswith(".safetensors"):
        model, meta = load_safetensors(path)
    else:
        model, meta = load(model_file(path))
    if need_meta and not {"input_shape", "num_classes"} <= set(meta):
        raise UserError(
            f"{path} does not record its input shape and classes: save it with `nanocnn train`, or "
            f"nc.save(path, model, meta={{'input_shape': [C, H, W], 'num_classes': K}})"
        )
    if need_meta:
        from ..io.export import check_shapes

        shape, _, classes = check_shapes(model, meta["input_shape"], meta["num_classes"], str(path))
        if classes is None:
            raise UserError(f"{path}: num_classes must be an integer >= 1, got None")
        meta = {**meta, "input_shape": list(shape), "num_classes": classes}
    return model, meta


def check_takes_input(model, meta, input_shape):
    """Raise UserError when the model was trained on another image shape than the data's."""
    expected = tuple(meta["input_shape"])
    if expected != tuple(input_shape):
        raise UserError(f"the model takes images of shape {expected} (C, H, W), the data has {tuple(input_shape)}")
    model.output_shape(tuple(input_shape))


def load_test_split(args, model, meta):
    """The test split of --data (default: the bundled MNIST) for a model, checked to fit it."""
    from ..data import load_dataset

    classes = meta["num_classes"]
    data = load_dataset(args.data, limit_test=args.limit_test, num_classes=classes, with_train=False)
    check_takes_input(model, meta, data.input_shape)
    return data, classes


def add_data_options(parser):
    parser.add_argument(
        "--data",
        metavar="PATH",
        help="an .npz or IDX folder as for train (default: the bundled MNIST); its test split is used",
    )
    parser.add_argument("--limit-test", type=parse_int, metavar="N", help="use the first N test images")
