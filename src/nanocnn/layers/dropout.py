"""Dropout: in training, zero each activation with probability p and scale the rest by 1 / (1 - p)."""
import numpy as np

from ..functional import check_dtype
from .module import Module


class Dropout(Module):
    """Inverted dropout, so evaluation needs no rescaling; the identity in eval mode.

    Shapes: x : any shape -> out : the same shape. ``rng`` is the np.random.Generator the masks come
    from; training code passes its one seeded generator so runs are reproducible.
    """

    def __init__(self, p=0.5, rng=None):
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be a probability in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = np.random.default_rng() if rng is None else rng
        self._mask = None

    def forward(self, x):
        check_dtype(x, "Dropout")
        if not self.training or self.p == 0:
            self._mask = None
            return x
        keep = self.rng.random(x.shape, dtype=x.dtype) >= self.p          # (same shape as x)
        self._mask = keep * x.dtype.type(1 / (1 - self.p))                 # scaled mask, x's dtype
        return x * self._mask

    def backward(self, grad_out):
        return grad_out if self._mask is None else grad_out * self._mask

    def spec(self):
        return dict(p=self.p)
