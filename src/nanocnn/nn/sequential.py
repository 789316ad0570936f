"""Sequential: a stack of layers run forward in order and backward in reverse."""

from __future__ import annotations

import copy

import numpy as np

from ..backend.inference import infer
from ..validation import UserError
from .module import Module


class Sequential(Module):
    """model = Sequential(layer, ...); model(x) runs each layer in turn; model.backward(dout) in reverse.

    Parameter names follow PyTorch: '<layer index>.<parameter>', e.g. '0.weight', '0.bias'.
    """

    def __init__(self, *layers: Module):
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise UserError(f"Sequential: layer {i} must be a nanocnn layer, got {type(layer).__name__}")
        self.layers = list(layers)
        self._plan = None  # the backend's inference plan for these layers in eval mode, built on first use

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def named_children(self) -> list[tuple[str, Module]]:
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x : (N, ...) -> the last layer's output (N, ...): every layer's forward in turn.

        With gradients disabled (eval mode: nothing is kept for backward) the backend runs the same layers
        faster (``nanocnn.backend.inference``): fused where that changes no number, a large batch in parts
        sized for the cache and spread over the CPUs. Its numbers are the layers' own, run one by one on
        each part, whatever the batch size or the thread count.
        """
        if not self.grad_enabled:
            return infer(self, x)
        for layer in self.layers:
            x = layer(x)
        return x

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

    def replicate(self) -> Sequential:
        replica = copy.copy(self)
        replica.layers = [layer.replicate() for layer in self.layers]
        replica._plan = None
        return replica

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

    def scratch_size(self, input_shape):
        largest = 0
        for layer in self.layers:
            largest = max(largest, layer.scratch_size(input_shape))
            input_shape = layer.output_shape(input_shape)
        return largest

    def summary(self, input_shape: tuple) -> str:
        """A table of layers, output shapes, parameter counts and multiply-adds for one example (C, H, W);
        the layers inside a Residual or a nested Sequential follow it, indented (the totals count them once)."""
        rows = [("layer", "output shape", "params", "MACs"), ("input", str(tuple(input_shape)), "", "")]
        shape, params, macs = tuple(input_shape), 0, 0
        for i, layer in enumerate(self.layers):
            own, *inside = layer.summary_rows(str(i), shape)
            shape, params, macs = tuple(own[1]), params + own[2], macs + own[3]
            rows += [(text, str(tuple(out)), f"{n:,}", f"{m:,}") for text, out, n, m in (own, *inside)]
        rows.append(("total", "", f"{params:,}", f"{macs:,}"))
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}  {d:>{widths[3]}}" for a, b, c, d in rows]
        lines.insert(1, "-" * len(lines[0]))
        lines.insert(len(lines) - 1, "-" * len(lines[0]))
        return "\n".join(lines)

    def summary_rows(self, name, input_shape, indent=""):
        own = super().summary_rows(name, input_shape, indent)[0]
        rows, shape = [(f"{indent}{name}: Sequential", *own[1:])], tuple(input_shape)
        for i, layer in enumerate(self.layers):
            rows += layer.summary_rows(f"{name}.{i}", shape, indent + "  ")
            shape = tuple(layer.output_shape(shape))
        return rows

    def spec(self):
        return [[type(layer).__name__, layer.spec()] for layer in self.layers]

    def to_onnx(self, graph, x, name):
        for i, layer in self.named_children():
            x = graph.layer(layer, x, f"{name}.{i}" if name else i)
        return x

    def to_torch(self):
        """torch.nn.Sequential of the same layers (export describes each in turn)."""
        return "Sequential", list(self.layers)

    def __repr__(self):
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"
