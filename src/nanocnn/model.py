"""Sequential: a stack of layers run forward in order and backward in reverse; saving and loading it safely."""

from __future__ import annotations

import copy
import json
import math
import os
import threading

import numpy as np

from .blas import single_thread
from .fileio import atomic_write, read_npz
from .layers import LAYERS, Module, Parameter
from .plan import Plan, signature
from .validation import UserError

FORMAT = "nanocnn-model-1"
PIECE_BYTES = 2 * 2**20  # inference runs in pieces whose largest scratch array is about this size
MIN_PIECE, MAX_PIECE = 8, 1024


class Sequential(Module):
    """model = Sequential(layer, ...); model(x) runs each layer in turn; model.backward(dout) in reverse.

    Parameter names follow PyTorch: '<layer index>.<parameter>', e.g. '0.weight', '0.bias'.
    With gradients disabled (eval mode), a batch of any size runs in pieces sized for the cache
    (``piece_size``), one piece through all layers at a time: the numbers are those of the pieces, the
    memory beyond input and output is bounded, and calls from many threads at once are safe.
    """

    def __init__(self, *layers: Module):
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise UserError(f"Sequential: layer {i} must be a nanocnn layer, got {type(layer).__name__}")
        self.layers = list(layers)
        self._plan = None  # (signature, Plan): eval mode's fused steps, built on first use

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x : (N, ...) -> the last layer's output (N, ...).

        With gradients disabled (inference) BLAS runs on one thread (blas.py), the layers run as an
        inference plan (plan.py: fused steps, exactly the layers' numbers), and a batch of more than one
        piece runs piece by piece, the pieces spread over every usable CPU: the numbers are the same
        whatever the batch size or the thread count, for each piece.
        """
        return self.run(x) if self.grad_enabled else self.infer(x)

    def infer(self, x, threads=None):
        """Eval-mode forward of x (N, ...) through the inference plan, in pieces spread over ``threads``
        threads (None: every usable CPU); gradients must be off."""
        plan = self.plan()
        n = len(x) if isinstance(x, np.ndarray) and x.ndim > 0 else 0
        if n <= MIN_PIECE:
            piece = n
        else:
            key = (x.shape[1:], x.dtype)
            piece = plan.piece_sizes.get(key)
            if piece is None:
                piece = plan.piece_sizes[key] = self.piece_size(*key)
        with single_thread():
            if n <= piece:
                return plan.run(x)
            return self._in_pieces(plan, x, piece, threads)

    def _in_pieces(self, plan, x, piece, threads):
        """plan.run on each piece of x, the pieces spread over threads; the output is allocated by the
        first piece to finish (its shape and dtype tell the output's), so no piece waits for another."""
        from .parallel import DataParallel

        out, lock = [], threading.Lock()

        def job(model, start):
            y = plan.run(x[start : start + piece])
            if not out:
                with lock:
                    if not out:
                        out.append(np.empty((len(x),) + y.shape[1:], dtype=y.dtype))
            out[0][start : start + piece] = y

        with DataParallel(self, threads) as parallel:
            parallel.map(job, range(0, len(x), piece))
        return out[0]

    def plan(self) -> Plan:
        """The inference plan for the layers as they are now (rebuilt when a layer or its mode changes)."""
        key = signature(self.layers)
        cached = getattr(self, "_plan", None)
        if cached is None or cached[0] != key:
            cached = self._plan = (key, Plan(self.layers))  # one atomic store: threads see one plan or the other
        return cached[1]

    def run(self, x):
        """Every layer's forward in turn on the whole of x."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def piece_size(self, input_shape: tuple, dtype=np.float32) -> int:
        """Examples per inference piece: the largest per-example array (a layer's output or its scratch,
        e.g. a conv's columns) times the piece stays near PIECE_BYTES, between MIN_PIECE and MAX_PIECE.

        With the inference plan (plan.py) and its forward-only convolutions (convolution.py), measured here
        on 2 threads, 10,000 images, medians of 7 (img/s by piece size; this machine's timings drift by
        30% within minutes): the article's network 32,717 at 24, 28,058 at 33, 31,773 at 48, 31,917 at
        64, 32,961 at 96; the default preset 11,839 at 24, 12,478 at 33, 11,797 at 48, 11,749 at 64,
        12,787 at 96 (before them, with whole column matrices, 12-24 was best and 48 lost a quarter).
        The rule gives 54 and 33 there (the second convs' space-to-depth arrays and slabs).
        """
        largest, shape = 1, tuple(input_shape)
        try:
            for layer in self.layers:
                largest = max(largest, layer.scratch_size(shape))
                shape = layer.output_shape(shape)
                largest = max(largest, math.prod(shape))
        except UserError:  # a shape the layers reject: forward will say why, on a small piece
            return MIN_PIECE
        return int(np.clip(PIECE_BYTES // (np.dtype(dtype).itemsize * largest), MIN_PIECE, MAX_PIECE))

    def backward(self, grad_out, input_grad=True):
        """Run each layer's backward in reverse; returns dx, or None with input_grad=False.

        With input_grad=False nothing below the first layer that has parameters runs, and that
        layer skips its own input gradient: nobody needs the gradient of the data.
        """
        first = 0 if input_grad else next((i for i, layer in enumerate(self.layers) if layer.parameters()), None)
        if first is None:  # nothing to train: no gradient is needed
            return None
        for layer in reversed(self.layers[first + 1 :]):
            grad_out = layer.backward(grad_out)
        return self.layers[first].backward(grad_out, input_grad=input_grad) if self.layers else grad_out

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        return [(f"{i}.{name}", p) for i, layer in enumerate(self.layers) for name, p in layer.named_parameters()]

    def train(self, mode: bool = True) -> Sequential:
        super().train(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def enable_grad(self, mode: bool = True) -> Sequential:
        super().enable_grad(mode)
        for layer in self.layers:
            layer.enable_grad(mode)
        return self

    def replicate(self) -> Sequential:
        replica = copy.copy(self)
        replica.layers = [layer.replicate() for layer in self.layers]
        return replica

    def reseed(self, original: Sequential) -> None:
        for mine, theirs in zip(self.layers, original.layers):
            mine.reseed(theirs)

    def state_dict(self) -> dict[str, np.ndarray]:
        """name -> a copy of the parameter's array."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy arrays into the parameters. Missing, unexpected and mis-shaped keys are reported together."""
        params = dict(self.named_parameters())
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        mismatched = [
            f"{k}: expected {params[k].shape}, got {np.shape(state[k])}"
            for k in params
            if k in state and np.shape(state[k]) != params[k].shape
        ]
        problems = []
        if missing and strict:
            problems.append(f"missing keys {missing}")
        if unexpected and strict:
            problems.append(f"unexpected keys {unexpected}")
        if mismatched:
            problems.append("shape mismatch " + "; ".join(mismatched))
        if problems:
            raise UserError("load_state_dict: " + ", ".join(problems))
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

    def summary(self, input_shape: tuple) -> str:
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
        lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}  {d:>{widths[3]}}" for a, b, c, d in rows]
        lines.insert(1, "-" * len(lines[0]))
        lines.insert(len(lines) - 1, "-" * len(lines[0]))
        return "\n".join(lines)

    def spec(self):
        return [[type(layer).__name__, layer.spec()] for layer in self.layers]

    def __repr__(self):
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"


def from_spec(spec) -> Sequential:
    """Rebuild a Sequential from its spec, a list of [layer name, constructor arguments].

    Only the constructors of registered layer classes are called (``register_layer``): no code runs.
    """
    if not isinstance(spec, list):
        raise UserError(f"model spec must be a list of layers, got {type(spec).__name__}")
    layers = []
    for item in spec:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise UserError(f"model spec has a malformed layer entry {str(item)[:80]}")
        name, args = item
        if name == "Sequential":
            layers.append(from_spec(args))
            continue
        if name not in LAYERS:
            raise UserError(
                f"unknown layer type {name!r}: define the class and decorate it with "
                f"@nanocnn.register_layer before loading"
            )
        if not isinstance(args, dict):
            raise UserError(f"model spec has malformed arguments for {name}: {str(args)[:80]}")
        try:
            layers.append(LAYERS[name](**args))
        except TypeError as e:
            raise UserError(f"cannot rebuild layer {name} from {str(args)[:80]}: {e}") from None
        except MemoryError:
            raise UserError(f"layer {name} {str(args)[:80]} needs more memory than this machine has") from None
    return Sequential(*layers)


def save(path, model: Sequential, meta: dict | None = None, arrays: dict | None = None) -> None:
    """Write model weights, its architecture (as JSON) and extra arrays to an .npz, atomically.

    The file is written beside ``path`` under a temporary name and renamed over it, so a crash
    never leaves a half-written model. meta must be JSON-serialisable.
    """
    path = os.fspath(path)
    try:
        header = json.dumps({"format": FORMAT, "spec": model.spec(), "meta": meta or {}})
    except TypeError as e:
        raise UserError(f"save: the model's spec() or meta is not JSON: {e}") from None
    payload = {f"model/{k}": v for k, v in model.state_dict().items()}
    payload.update({f"extra/{k}": np.asarray(v) for k, v in (arrays or {}).items()})
    payload["__nanocnn__"] = np.array(header)
    atomic_write(path, lambda f: np.savez(f, **payload))


def load(path) -> tuple[Sequential, dict, dict]:
    """Read a file written by ``save``: returns (model, meta, arrays). Never unpickles, so never runs code.

    Raises UserError for a missing, truncated, foreign or inconsistent file.
    """
    contents = read_npz(path, "model file")
    if "__nanocnn__" not in contents:
        raise UserError(f"{path} is not a nanocnn model file (no __nanocnn__ header)")
    try:
        header = json.loads(str(contents.pop("__nanocnn__")))
    except json.JSONDecodeError as e:
        raise UserError(f"{path} has a corrupt header: {e}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        found = header.get("format") if isinstance(header, dict) else header
        raise UserError(f"{path} has an unknown format {found!r}")
    try:
        model = from_spec(header["spec"])
    except (KeyError, UserError) as e:
        raise UserError(f"{path}: bad model architecture: {e}") from None
    weights = {k[len("model/") :]: v for k, v in contents.items() if k.startswith("model/")}
    for k, v in weights.items():
        if not np.issubdtype(v.dtype, np.floating) or not np.isfinite(v).all():
            raise UserError(f"{path}: weight {k} is not finite floating point")
    try:
        model.load_state_dict(weights)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    arrays = {k[len("extra/") :]: v for k, v in contents.items() if k.startswith("extra/")}
    meta = header.get("meta", {})
    return model, meta if isinstance(meta, dict) else {}, arrays
