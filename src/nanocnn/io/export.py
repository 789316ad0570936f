"""Take a trained model anywhere: ONNX for inference runtimes, safetensors for PyTorch, and back into nanocnn.

    export_onnx(model, "model.onnx", input_shape=(1, 28, 28))     # float32 (N, C, H, W) in [0, 1] -> logits
    save_safetensors(model, "model.safetensors", input_shape=(1, 28, 28))
    model, meta = load_safetensors("model.safetensors")            # or load_safetensors(path, model=preset_model)
    export_model(model, path, input_shape)                         # the format from the extension (the CLI's)

A safetensors file holds the weights under their PyTorch state_dict names ('0.weight', '0.bias', ...:
nanocnn's layer indices line up 1:1 with torch.nn.Sequential's) and, as JSON strings in its metadata,
the nanocnn architecture ("nanocnn_spec"), "input_shape" and "num_classes" when known, and "pytorch":
a list of [torch.nn class name, kwargs] that rebuilds the same network in PyTorch with no code from the file.
For a network without residual blocks (a "Residual" entry nests its block: the README's ``build`` rebuilds those):

    spec = json.loads(safe_open(path, "pt").metadata()["pytorch"])
    model = torch.nn.Sequential(*(getattr(torch.nn, name)(**kwargs) for name, kwargs in spec))
    model.load_state_dict(safetensors.torch.load_file(path))      # float32; call model.double() first for F64
    model.eval()                                                  # as with any torch model: Dropout off

Every write builds the whole file in memory first, then writes it atomically, refusing to replace an
existing file unless overwrite=True: an error at any point leaves no file, or the old one untouched.
"""

from __future__ import annotations

import json
import os

import numpy as np

from ..nn import Module, Sequential
from ..nn.registry import from_spec
from ..validation import UserError, is_int
from ..version import __version__
from .checkpoint import check_model
from .files import atomic_write
from .onnx import onnx_bytes
from .safetensors import encode_safetensors, read_safetensors


def check_shapes(model, input_shape, num_classes, owner):
    """-> (input_shape (C, H, W), one example's output shape, num_classes), checked against the model.

    input_shape None gives (None, None, num_classes); num_classes None is read off a (K,) output.
    """
    if num_classes is not None and not (is_int(num_classes) and num_classes >= 1):
        raise UserError(f"{owner}: num_classes must be an integer >= 1, got {num_classes!r}")
    if input_shape is None:
        return None, None, num_classes
    shape = tuple(input_shape) if isinstance(input_shape, (list, tuple)) else None
    if shape is None or len(shape) != 3 or not all(is_int(d) and d >= 1 for d in shape):
        raise UserError(f"{owner}: input_shape must be (C, H, W), three integers >= 1, got {input_shape!r}")
    try:
        output_shape = tuple(int(d) for d in model.output_shape(shape))
    except ValueError as e:  # the layer that cannot take this input says why
        raise UserError(f"{owner}: the model does not take input of shape {shape}: {e}") from None
    if len(output_shape) == 1 and num_classes not in (None, output_shape[0]):
        raise UserError(f"{owner}: num_classes is {num_classes} but the model outputs {output_shape[0]} logits")
    if len(output_shape) == 1:
        num_classes = output_shape[0]
    return tuple(int(d) for d in shape), output_shape, num_classes


def check_new(path, overwrite):
    """The output path as a str; an existing file is an error unless ``overwrite``."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise UserError(f"{path} is a folder; give the name of a file to write")
    if os.path.lexists(path) and not overwrite:
        raise UserError(f"{path} already exists; pass --overwrite (overwrite=True) to replace it")
    return path


def write_new(path, data):
    """Write the bytes ``data`` to ``path`` atomically (a failed write leaves no file and no temporary)."""
    try:
        atomic_write(path, lambda f: f.write(data))
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None
    return path


def export_onnx(
    model: Sequential, path, input_shape: tuple, num_classes: int | None = None, overwrite: bool = False
) -> str:
    """Write ``model`` as an ONNX graph: float32 input (N, C, H, W) in [0, 1], N open -> output (N, K) logits.

    input_shape : (C, H, W), one example. Dropout is left out (inference). metadata_props record the
    input's dtype, layout, range and shape, num_classes and the nanocnn version. Returns the path.
    """
    path = check_new(path, overwrite)
    check_model(model, "export_onnx")
    input_shape, output_shape, num_classes = check_shapes(model, input_shape, num_classes, "export_onnx")
    if input_shape is None:
        raise UserError("export_onnx: input_shape (C, H, W) is needed to export to ONNX")
    props = {
        "nanocnn_version": __version__,
        "input_dtype": "float32",
        "input_layout": "NCHW",
        "input_range": "[0, 1]",
        "input_shape": json.dumps(["N", *input_shape]),
        "output": "logits (softmax not applied)",
        "output_shape": json.dumps(["N", *output_shape]),
        "nanocnn_spec": json.dumps(model.spec()),
    }
    if num_classes is not None:
        props["num_classes"] = str(num_classes)
    return write_new(path, onnx_bytes(model, input_shape, output_shape, props))


def torch_spec(layer, name):
    """[torch.nn class name, kwargs] for ``layer`` (named by its path, e.g. '3' or '1.block.0'), from its
    ``to_torch``; layers in its kwargs (a Sequential's, a Residual's paths) are described in turn."""
    to_torch = layer.declared("to_torch")
    if to_torch is None:
        kind = type(layer).__name__
        raise UserError(
            f"save_safetensors: layer {name} ({kind}) has no torch.nn equivalent: give {kind} a to_torch() "
            f"method naming the torch.nn class that computes the same (the README's 'Writing your own "
            f"layer'), or save the model with nanocnn.save"
        )
    kind, kwargs = to_torch()

    def plain(value, path):
        if isinstance(value, Module):
            return torch_spec(value, path)
        if isinstance(value, list):
            return [plain(v, f"{path}.{i}") for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: plain(v, f"{path}.{k}") for k, v in value.items()}
        return value

    return [kind, plain(kwargs, name)]


def pytorch_spec(model):
    """[[torch.nn class name, kwargs], ...] that rebuilds ``model`` as a torch.nn.Sequential (``Module.to_torch``)."""
    return [torch_spec(layer, str(i)) for i, layer in enumerate(model.layers)]


def save_safetensors(
    model: Sequential,
    path,
    input_shape: tuple | None = None,
    num_classes: int | None = None,
    meta: dict | None = None,
    overwrite: bool = False,
) -> str:
    """Write the weights and architecture of ``model`` to a safetensors file that PyTorch loads as it is.

    input_shape : (C, H, W) and num_classes are recorded when given (or found in ``meta``; the arguments
    win). meta : {str: JSON-serialisable}, each value stored as a JSON string; the keys nanocnn_version,
    nanocnn_spec and pytorch are always derived from the model. Returns the path.
    """
    path = check_new(path, overwrite)
    check_model(model, "save_safetensors")
    meta = dict(meta or {})
    input_shape = meta.pop("input_shape", None) if input_shape is None else input_shape
    num_classes = meta.pop("num_classes", None) if num_classes is None else num_classes
    input_shape, _, num_classes = check_shapes(model, input_shape, num_classes, "save_safetensors")
    meta.update({k: v for k, v in (("input_shape", input_shape), ("num_classes", num_classes)) if v is not None})
    meta.update(nanocnn_version=__version__, nanocnn_spec=model.spec(), pytorch=pytorch_spec(model))
    metadata = {}
    for key, value in meta.items():
        try:
            metadata[str(key)] = json.dumps(value)
        except (TypeError, ValueError) as e:
            raise UserError(f"save_safetensors: meta[{key!r}] cannot be stored as JSON: {e}") from None
    return write_new(path, encode_safetensors(model.state_dict(), metadata))


def decode(value):
    """A metadata string as the JSON value nanocnn stored, or the string itself when it is not JSON."""
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return value


def load_safetensors(path, model: Sequential | None = None) -> tuple[Sequential, dict]:
    """Load weights from a safetensors file (nanocnn's, or safetensors.torch.save_file(model.state_dict())).

    model : the Sequential the weights belong to, filled in place; None builds it from the file's
    "nanocnn_spec" (files written by nanocnn). Missing, unexpected and mis-shaped weights are reported
    together; weights are cast to the model's dtype, as torch's load_state_dict does (F16 and BF16 exactly).
    Returns (model, meta), meta being the file's metadata with each JSON value decoded.
    """
    path = os.fspath(path)
    if model is not None:
        check_model(model, "load_safetensors")
    tensors, metadata = read_safetensors(path)
    meta = {k: decode(v) for k, v in metadata.items()}
    if model is None:
        if "nanocnn_spec" not in meta:
            raise UserError(
                f"{path} does not record a nanocnn architecture (not written by nanocnn?); "
                f"pass the model its weights belong to"
            )
        try:
            model = from_spec(meta["nanocnn_spec"])
        except (TypeError, ValueError) as e:
            raise UserError(f"{path}: bad nanocnn architecture in its metadata: {e}") from None
    bad = sorted(name for name, array in tensors.items() if not np.isfinite(array).all())
    if bad:
        raise UserError(f"{path}: weights {bad} are not finite")
    try:
        model.load_state_dict(tensors)
    except ValueError as e:
        raise UserError(f"{path}: {e}") from None
    return model, meta


def export_model(model, path, input_shape=None, num_classes=None, meta=None, overwrite=False):
    """Export to ONNX or safetensors as ``path`` ends in .onnx or .safetensors (any case). Returns the path.

    input_shape : (C, H, W), required for ONNX; meta goes into safetensors files only.
    """
    extension = os.path.splitext(os.fspath(path))[1]
    if extension.lower() == ".onnx":
        return export_onnx(model, path, input_shape, num_classes, overwrite=overwrite)
    if extension.lower() == ".safetensors":
        return save_safetensors(model, path, input_shape, num_classes, meta=meta, overwrite=overwrite)
    raise UserError(
        f"cannot export to {extension or 'a name without an extension'!r} ({os.fspath(path)}): "
        f"the output must end in .onnx or .safetensors"
    )
