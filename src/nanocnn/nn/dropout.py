"""Dropout: in training, zero each activation with probability p and scale the rest by 1 / (1 - p)."""

import numpy as np

from ..validation import check_array, check_real
from .module import Module
from .registry import register_layer


@register_layer
class Dropout(Module):
    """Inverted dropout, so evaluation needs no rescaling; the identity in eval mode.

    Shapes: x : any shape -> out : the same shape. ``rng`` is the np.random.Generator the masks come
    from; training code passes its one seeded generator so runs are reproducible.
    """

    fusion = "dropout"

    def __init__(self, p=0.5, rng=None):
        self.p = check_real(p, "p", 0, 1, high_open=True, owner="Dropout")
        self.rng = np.random.default_rng() if rng is None else rng
        self._cache = None

    def forward(self, x):
        check_array(x, "Dropout")
        if not self.training or self.p == 0:
            mask = None  # the identity
        else:
            keep = self.rng.random(x.shape, dtype=x.dtype) >= self.p  # (same shape as x)
            mask = keep * x.dtype.type(1 / (1 - self.p))  # scaled mask, x's dtype
        self._cache = (mask,) if self.grad_enabled else None  # mask None: the identity
        return x if mask is None else x * mask

    def backward(self, grad_out, input_grad=True):
        if self._cache is None:
            raise RuntimeError("Dropout: backward needs a forward pass with gradients enabled first")
        (mask,) = self._cache
        if not input_grad:
            return None
        return grad_out if mask is None else grad_out * mask

    def spec(self):
        return dict(p=self.p)

    def explain(self, x, position):
        """At inference (the page's mode) Dropout passes its input on unchanged: out = x."""
        return dict(input=float(x[position]), total=float(x[position]))

    def explain_backward(self, x, grad_out, position):
        """At inference the gradient passes unchanged too."""
        return dict(grad=float(grad_out[position]), total=float(grad_out[position]))

    def to_onnx(self, graph, x, name):
        return x  # the identity at inference

    def to_torch(self):
        return "Dropout", {"p": self.p}
