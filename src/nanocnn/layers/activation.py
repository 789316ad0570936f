"""ReLU, the activation the article describes (and its code never applies)."""
import numpy as np

from ..functional import check_dtype
from .module import Module


class ReLU(Module):
    """out = max(x, 0) elementwise; the gradient passes where x > 0 (0 at x == 0, as in PyTorch).

    Shapes: x : any shape -> out : the same shape.
    """

    def __init__(self):
        self._mask = None
        self._zeros = None                    # read-only zeros laid out like the last input

    def forward(self, x):
        check_dtype(x, "ReLU")
        out = np.maximum(x, self.zeros_like(x))
        self._mask = (out > 0) if self.training else None
        return out

    def zeros_like(self, x):
        """Zeros laid out in memory like x (kept for the next call of that layout); 0 when x is not dense.

        numpy (2.4) has no SIMD loop for maximum with a scalar operand: np.maximum(x, zeros) ran 2.8x
        faster than np.maximum(x, 0) on 113k floats here, the reads of the zeros included.
        """
        z = self._zeros
        if z is not None and z.shape == x.shape and z.strides == x.strides and z.dtype == x.dtype:
            return z
        order = np.argsort(x.strides, kind="stable")[::-1]         # axes from the largest stride down
        if x.size == 0 or not x.transpose(order).flags.c_contiguous:
            return x.dtype.type(0)
        z = np.zeros([x.shape[i] for i in order], dtype=x.dtype).transpose(np.argsort(order))
        z.flags.writeable = False
        self._zeros = z
        return z

    def backward(self, grad_out):
        if self._mask is None:
            raise RuntimeError("ReLU: backward needs a forward pass in training mode first")
        return grad_out * self._mask          # a multiply by a bool mask is ~10x faster than np.where
