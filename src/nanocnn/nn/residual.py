"""A residual (skip) connection: out = block(x) + shortcut(x) (He et al., 2016), the shortcut the identity or a
small layer (a 1x1 convolution with stride 2, say) when the block changes the shape."""

import numpy as np

from ..validation import UserError
from .module import Module
from .registry import register_layer

PROBE = 32  # the height and width a residual's paths are tried on at construction, when its channels are known


def spec_of(module):
    """[class name, spec()] of a module: how a nested layer is written in a saved architecture."""
    return None if module is None else [type(module).__name__, module.spec()]


@register_layer
class Residual(Module):
    """out = block(x) + shortcut(x), shortcut(x) = x when shortcut is None.

    Shapes: x : (N, C, H, W) -> out : the block's output shape, which the shortcut's must equal. Backward
    hands grad_out to both paths and adds the input gradients they return. ``block`` and ``shortcut`` are any
    layers (a Sequential, another Residual); their parameters are named 'block.<...>' and 'shortcut.<...>'.
    """

    nested = ("block", "shortcut")  # the arguments a saved spec holds as layers (nn.registry builds them)

    def __init__(self, block, shortcut=None):
        for name, value in (("block", block), ("shortcut", shortcut)):
            if not (isinstance(value, Module) or (name == "shortcut" and value is None)):
                raise UserError(f"Residual: {name} must be a nanocnn layer, got {type(value).__name__}")
        self.block = block
        self.shortcut = shortcut
        self._check_known_shapes()

    def _check_known_shapes(self):
        """When the input's channels can be read off the first layer that takes channels, try both paths on a
        PROBE x PROBE input of them: different shapes are an error now, not at the first forward."""
        channels = next(
            (
                getattr(m, k)
                for m in self.block.modules()
                for k in ("in_channels", "num_features")
                if isinstance(getattr(m, k, None), int)
            ),
            None,
        )
        if channels is None:
            return
        shape = (channels, PROBE, PROBE)
        try:
            a = tuple(self.block.output_shape(shape))
            b = shape if self.shortcut is None else tuple(self.shortcut.output_shape(shape))
        except (UserError, ValueError):
            return  # a path that cannot take this size: the first forward will tell
        if a != b:
            raise UserError(f"Residual: the block gives {a} but the shortcut {b} for an input of shape {shape}")

    def forward(self, x):
        """x : (N, C, H, W) -> block(x) + shortcut(x)."""
        a = self.block(x)
        b = x if self.shortcut is None else self.shortcut(x)
        if a.shape != b.shape:
            raise UserError(
                f"Residual: the block gives {a.shape[1:]} but the shortcut {b.shape[1:]} for an input of shape "
                f"{x.shape[1:]}"
            )
        return a + b

    def backward(self, grad_out, input_grad=True):
        """grad_out -> dx = the block's input gradient + the shortcut's (grad_out itself for the identity)."""
        da = self.block.backward(grad_out, input_grad)
        db = grad_out if self.shortcut is None else self.shortcut.backward(grad_out, input_grad)
        return da + db if input_grad else None

    def output_shape(self, input_shape):
        a = tuple(self.block.output_shape(input_shape))
        b = tuple(input_shape) if self.shortcut is None else tuple(self.shortcut.output_shape(input_shape))
        if a != b:
            shape = tuple(input_shape)
            raise UserError(f"Residual: the block gives {a} but the shortcut {b} for an input of shape {shape}")
        return a

    def macs(self, input_shape):
        shortcut = 0 if self.shortcut is None else self.shortcut.macs(input_shape)
        return self.block.macs(input_shape) + shortcut + int(np.prod(self.output_shape(input_shape)))

    def scratch_size(self, input_shape):
        shortcut = 0 if self.shortcut is None else self.shortcut.scratch_size(input_shape)
        return max(self.block.scratch_size(input_shape), shortcut) + int(np.prod(self.output_shape(input_shape)))

    def summary_rows(self, name, input_shape, indent=""):
        own = super().summary_rows(name, input_shape, indent)[0]
        path = "identity" if self.shortcut is None else "shortcut"
        rows = [(f"{indent}{name}: Residual: block(x) + {path}(x)", *own[1:])]
        rows += self.block.summary_rows(f"{name}.block", input_shape, indent + "  ")
        if self.shortcut is not None:
            rows += self.shortcut.summary_rows(f"{name}.shortcut", input_shape, indent + "  ")
        return rows

    def explain(self, x, position):
        """out[position] = block(x)[position] + shortcut(x)[position], each path run alone on this example."""
        a = self.block.replicate().eval()(x[None])[0]
        b = x if self.shortcut is None else self.shortcut.replicate().eval()(x[None])[0]
        a, b = float(a[position]), float(b[position])
        return dict(block=a, shortcut=b, total=a + b)

    def explain_backward(self, x, grad_out, position):
        """dx[position] = the block's input gradient there + the shortcut's."""

        def through(path):
            if path is None:
                return grad_out[position]
            replica = path.replicate().eval().enable_grad()
            replica(x[None])
            return replica.backward(grad_out[None])[0][position]

        a, b = float(through(self.block)), float(through(self.shortcut))
        return dict(block=a, shortcut=b, total=a + b)

    def spec(self):
        return {"block": spec_of(self.block), "shortcut": spec_of(self.shortcut)}

    def to_onnx(self, graph, x, name):
        a = graph.layer(self.block, x, f"{name}.block")
        b = x if self.shortcut is None else graph.layer(self.shortcut, x, f"{name}.shortcut")
        return graph.node("Add", [a, b], name)

    def to_torch(self):
        """torch.nn has no residual module: the README's ``Residual`` (block(x) + shortcut(x)) takes these,
        the paths as layers for export to describe in turn."""
        return "Residual", {"block": self.block, "shortcut": self.shortcut}

    def __repr__(self):
        inner = f"\n  (block): {self.block!r}".replace("\n", "\n  ")
        if self.shortcut is not None:
            inner += f"\n  (shortcut): {self.shortcut!r}".replace("\n", "\n  ")
        return f"Residual({inner}\n)"
