"""Sequential: a stack of layers run forward in order and backward in reverse; saving and loading it safely."""
import json
import os

import numpy as np

from .layers import LAYERS, Module
from .fileio import atomic_write, read_npz

FORMAT = "nanocnn-model-1"


class Sequential(Module):
    """model = Sequential(layer, ...); model(x) runs each layer in turn; model.backward(dout) in reverse.

    Parameter names follow PyTorch: '<layer index>.<parameter>', e.g. '0.weight', '0.bias'.
    """

    def __init__(self, *layers):
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise ValueError(f"Sequential: layer {i} must be a nanocnn layer, got {type(layer).__name__}")
        self.layers = list(layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_out, input_grad=True):
        """Run each layer's backward in reverse; returns dx, or None with input_grad=False.

        With input_grad=False nothing below the first layer that has parameters runs, and that
        layer skips its own input gradient: nobody needs the gradient of the data.
        """
        if input_grad:
            for layer in reversed(self.layers):
                grad_out = layer.backward(grad_out)
            return grad_out
        first = next((i for i, layer in enumerate(self.layers) if layer.parameters()), None)
        if first is None:                                   # nothing to train: no gradient is needed
            return None
        for layer in reversed(self.layers[first + 1:]):
            grad_out = layer.backward(grad_out)
        return self.layers[first].backward(grad_out, input_grad=False)

    def named_parameters(self):
        return [(f"{i}.{name}", p) for i, layer in enumerate(self.layers) for name, p in layer.named_parameters()]

    def train(self, mode=True):
        self.training = bool(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def state_dict(self):
        """name -> a copy of the parameter's array."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state, strict=True):
        """Copy arrays into the parameters. Missing, unexpected and mis-shaped keys are reported together."""
        params = dict(self.named_parameters())
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        mismatched = [f"{k}: expected {params[k].shape}, got {np.shape(state[k])}"
                      for k in params if k in state and np.shape(state[k]) != params[k].shape]
        problems = []
        if missing and strict:
            problems.append(f"missing keys {missing}")
        if unexpected and strict:
            problems.append(f"unexpected keys {unexpected}")
        if mismatched:
            problems.append("shape mismatch " + "; ".join(mismatched))
        if problems:
            raise ValueError("load_state_dict: " + ", ".join(problems))
        for k, p in params.items():
            if k in state:
                np.copyto(p.data, state[k], casting="same_kind")

    def output_shape(self, input_shape):
        for layer in self.layers:
            input_shape = layer.output_shape(input_shape)
        return input_shape

    def macs(self, input_shape):
        total = 0
        for layer in self.layers:
            total += layer.macs(input_shape)
            input_shape = layer.output_shape(input_shape)
        return total

    def summary(self, input_shape):
        """A table of layers, output shapes, parameter counts and multiply-adds for one example (C, H, W)."""
        rows = [("layer", "output shape", "params", "MACs"), ("input", str(tuple(input_shape)), "", "")]
        shape, params, macs = tuple(input_shape), 0, 0
        for i, layer in enumerate(self.layers):
            n = sum(p.data.size for p in layer.parameters())
            m = layer.macs(shape)
            shape = layer.output_shape(shape)
            params, macs = params + n, macs + m
            rows.append((f"{i}: {layer!r}", str(shape), f"{n:,}", f"{m:,}"))
        rows.append(("total", "", f"{params:,}", f"{macs:,}"))
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        fmt = lambda r: f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}"
        lines = [fmt(r) for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        lines.insert(len(lines) - 1, "-" * len(lines[0]))
        return "\n".join(lines)

    def spec(self):
        return [[type(layer).__name__, layer.spec()] for layer in self.layers]

    def __repr__(self):
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"


def from_spec(spec):
    """Rebuild a Sequential from its spec: a list of [layer name, constructor arguments]. No code runs."""
    if not isinstance(spec, list):
        raise ValueError(f"model spec must be a list of layers, got {type(spec).__name__}")
    layers = []
    for item in spec:
        if not (isinstance(item, list) and len(item) == 2 and item[0] in LAYERS and isinstance(item[1], dict)):
            raise ValueError(f"model spec has an unknown layer entry {str(item)[:80]}")
        layers.append(LAYERS[item[0]](**item[1]))
    return Sequential(*layers)


def save(path, model, meta=None, arrays=None):
    """Write model weights, its architecture (as JSON) and extra arrays to an .npz, atomically.

    The file is written beside ``path`` under a temporary name and renamed over it, so a crash
    never leaves a half-written model. meta must be JSON-serialisable.
    """
    path = os.fspath(path)
    payload = {f"model/{k}": v for k, v in model.state_dict().items()}
    payload.update({f"extra/{k}": np.asarray(v) for k, v in (arrays or {}).items()})
    payload["__nanocnn__"] = np.array(json.dumps({"format": FORMAT, "spec": model.spec(), "meta": meta or {}}))
    atomic_write(path, lambda f: np.savez(f, **payload))


def load(path):
    """Read a file written by ``save``: returns (model, meta, arrays). Never unpickles, so never runs code.

    Raises ValueError for a missing, truncated, foreign or inconsistent file.
    """
    contents = read_npz(path, "model file")
    if "__nanocnn__" not in contents:
        raise ValueError(f"{path} is not a nanocnn model file (no __nanocnn__ header)")
    try:
        header = json.loads(str(contents.pop("__nanocnn__")))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} has a corrupt header: {e}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path} has an unknown format {header.get('format') if isinstance(header, dict) else header!r}")
    try:
        model = from_spec(header["spec"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: bad model architecture: {e}") from None
    weights = {k[len("model/"):]: v for k, v in contents.items() if k.startswith("model/")}
    for k, v in weights.items():
        if not np.issubdtype(v.dtype, np.floating) or not np.isfinite(v).all():
            raise ValueError(f"{path}: weight {k} is not finite floating point")
    model.load_state_dict(weights)
    arrays = {k[len("extra/"):]: v for k, v in contents.items() if k.startswith("extra/")}
    return model, header.get("meta", {}), arrays
