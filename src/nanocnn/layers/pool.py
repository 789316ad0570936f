"""2-D max pooling: each output is the largest value in its KH x KW window."""
import numpy as np

from ..functional import check_input, from_chwn, output_hw, pair, to_chwn, window
from .module import Module, short


class MaxPool2d(Module):
    """out[n, c, oh, ow] = max_{kh, kw} xpad[n, c, oh*SH + kh, ow*SW + kw]

    Shapes: x : (N, C, H, W) -> out : (N, C, OH, OW), OH = (H + 2*PH - KH) // SH + 1.
    stride defaults to kernel_size; padding adds -inf and is at most half the kernel (as in PyTorch).
    The gradient goes to one element per window: the first maximum in row-major order, as in PyTorch,
    so ties never double-count.
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        name = "MaxPool2d"
        self.kernel_size = pair(kernel_size, "kernel_size", name)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", name)
        self.padding = pair(padding, "padding", name, minimum=0)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{name}: padding must be at most half the kernel size {self.kernel_size}, "
                             f"got {padding!r}")
        self._cache = None

    def forward(self, x):
        """x : (N, C, H, W) -> (N, C, OH, OW)."""
        check_input(x, "MaxPool2d")
        H, W = x.shape[2:]
        out_hw = output_hw("MaxPool2d", (H, W), self.kernel_size, self.stride, self.padding)
        xp = to_chwn(x, self.padding, -np.inf)                            # (C, Hp, Wp, N)
        (KH, KW), (SH, SW), (OH, OW) = self.kernel_size, self.stride, out_hw
        # max is separable: first over the kernel's rows, whose views copy whole Wp*N rows, then over
        # its columns, whose views copy runs of only N (1.5x faster than all KH*KW views at N=8)
        rows = window(xp, 0, 0, (OH, xp.shape[2]), (SH, 1)).copy()       # (C, OH, Wp, N)
        for i in range(1, KH):
            np.maximum(rows, window(xp, i, 0, (OH, xp.shape[2]), (SH, 1)), out=rows)
        best = window(rows, 0, 0, out_hw, (1, SW)).copy()                # (C, OH, OW, N)
        for j in range(1, KW):
            np.maximum(best, window(rows, 0, j, out_hw, (1, SW)), out=best)
        self._cache = (x.shape, out_hw, xp, best) if self.training else None
        return from_chwn(best)

    def backward(self, grad_out):
        """grad_out : (N, C, OH, OW) -> dx : (N, C, H, W), nonzero only at each window's chosen maximum.

        The maxima are found again by comparing each kernel offset's view with the output, in row-major
        order, each window claimed by its first match; this keeps the forward pass a bare chain of
        np.maximum (no argmax bookkeeping, which masked numpy writes make slow).
        """
        if self._cache is None:
            raise RuntimeError("MaxPool2d: backward needs a forward pass in training mode first")
        (N, C, H, W), out_hw, xp, best = self._cache
        grad = grad_out.transpose(1, 2, 3, 0)                              # (C, OH, OW, N) view
        if grad.shape != best.shape:
            raise ValueError(f"MaxPool2d: grad_out shape {grad_out.shape} does not match the output")
        (KH, KW), (PH, PW) = self.kernel_size, self.padding
        dxp = np.zeros(xp.shape, dtype=grad_out.dtype)
        overlap = any(s < k for s, k in zip(self.stride, self.kernel_size))
        unclaimed = None
        for k in range(KH * KW):
            i, j = k // KW, k % KW
            hit = window(xp, i, j, out_hw, self.stride) == best           # this offset holds the max...
            if unclaimed is None:
                unclaimed = ~hit
            else:
                hit &= unclaimed                                           # ...and no earlier offset did
                if k < KH * KW - 1:
                    unclaimed ^= hit
            target = window(dxp, i, j, out_hw, self.stride)
            if overlap:
                target += grad * hit
            else:                                                          # disjoint windows: plain writes
                np.multiply(grad, hit, out=target)
        return from_chwn(dxp[:, PH:PH + H, PW:PW + W, :])

    def output_shape(self, input_shape):
        C, H, W = input_shape
        return (C,) + output_hw("MaxPool2d", (H, W), self.kernel_size, self.stride, self.padding)

    def macs(self, input_shape):
        return 0

    def spec(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding)

    def extra_repr(self):
        text = f"kernel_size={short(self.kernel_size)}"
        text += f", stride={short(self.stride)}" if self.stride != self.kernel_size else ""
        return text + (f", padding={short(self.padding)}" if self.padding != (0, 0) else "")
