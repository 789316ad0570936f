"""What every convolution strategy shares: the geometry, shifted copies, and the ``Strategy`` base class."""

import numpy as np

from ..layout import from_chwn, output_hw


def geometry(x_shape, weight_shape, stride, padding):
    """Everything the strategies derive from the shapes: (N, C, H, W, F, KH, KW, OH, OW)."""
    N, C, H, W = x_shape
    F, _, KH, KW = weight_shape
    OH, OW = output_hw((H, W), (KH, KW), stride, padding)
    return N, C, H, W, F, KH, KW, OH, OW


def span(n_out, n_in, offset, step):
    """[lo, hi): the indices o < n_out with 0 <= step*o + offset < n_in."""
    lo = max(0, -(offset // step))
    hi = min(n_out, (n_in - 1 - offset) // step + 1)
    return lo, max(lo, hi)


def shifted(dst_shape, src_shape, offset, step):
    """The shifted, strided copy behind ckw and S: dst[:, a, b] = src[:, step[0]*a + offset[0], step[1]*b + offset[1]].

    Returns (inner, source, borders): index tuples of the dst positions whose source is inside src, of
    those sources, and of the dst positions outside it (zero), for (C, A, B, N) dst and (C, H, W, N) src.
    """
    (a0, a1), (b0, b1) = (span(dst_shape[k], src_shape[k], offset[k - 1], step[k - 1]) for k in (1, 2))
    every = slice(None)
    if a0 == a1 or b0 == b1:
        return None, None, [(every,)]
    (SH, SW), (oh, ow) = step, offset
    inner = (every, slice(a0, a1), slice(b0, b1))
    source = (every, slice(SH * a0 + oh, SH * (a1 - 1) + oh + 1, SH), slice(SW * b0 + ow, SW * (b1 - 1) + ow + 1, SW))
    A, B = dst_shape[1:3]
    borders = [
        (every, slice(0, a0)),
        (every, slice(a1, A)),
        (every, inner[1], slice(0, b0)),
        (every, inner[1], slice(b1, B)),
    ]
    return inner, source, [b for b in borders if b[-1].start != b[-1].stop]


RUN_BYTES = 512  # below this, copy_runs moves each run of the last axis as one element


def copy_runs(dst, src):
    """np.copyto(dst, src) for arrays of one shape, faster when both have a short contiguous last axis.

    numpy's copy loop pays per run of its innermost axis; a stride-2 regrouping of (C, H, W, N) memory
    moves runs of only N numbers. Viewed as one void element each, the runs move as whole items (the same
    bytes; benchmarks/README.md has the measurements), so longer runs take the plain copy.
    """
    run = dst.shape[-1] * dst.itemsize if dst.ndim else 0
    if 0 < run < RUN_BYTES and dst.strides[-1] == src.strides[-1] == dst.itemsize and src.dtype == dst.dtype:
        void = np.dtype((np.void, run))
        np.copyto(dst.view(void), src.view(void))
    else:
        np.copyto(dst, src)


def span_sum(dst, terms, tmp):
    """dst (R, L) = the sum of terms, each (a, b, A, B) the product A @ B (R, b - a) in columns [a, b),
    zero elsewhere: the first product is written in place with zeros around it, the others go through
    ``tmp`` (R, >= L) and are added in order (so every column sums its terms in the same order)."""
    if not terms:
        dst[...] = 0
    for k, (a, b, A, B) in enumerate(terms):
        if k == 0:
            np.matmul(A, B, out=dst[:, a:b])
            dst[:, :a] = 0
            dst[:, b:] = 0
        else:
            np.matmul(A, B, out=tmp[:, : b - a])
            dst[:, a:b] += tmp[:, : b - a]


def zero_borders(dst, borders):
    for index in borders:
        dst[index] = 0


class Strategy:
    """One convolution of x (N, C, H, W) into out4 (F, OH, OW, N): constructed once, called per input.

    The constructor lays out the strategy's arrays in ``workspace`` (1-D) and writes what never changes
    (zero borders); ``conv(x4)`` then runs only the copies and products. weight (F, C, KH, KW) and bias
    (F,) or None are read at every call (their arrays, not copies). ``columns`` is what backward needs
    again; backward writes the column gradient over it. The output and dx are never views of the workspace.
    """

    kind = None

    def __init__(self, x_shape, weight, bias, stride, padding, workspace, out4):
        self.x_shape, self.weight, self.stride, self.padding = tuple(x_shape), weight, stride, padding
        self.workspace, self.out4 = workspace, out4
        self.bias4 = None if bias is None else bias.reshape(-1, 1, 1, 1)  # (F, 1, 1, 1) view
        self.geometry = geometry(x_shape, weight.shape, stride, padding)

    def __call__(self, x4):
        """x4 : (C, H, W, N) -> out4 (F, OH, OW, N), bias added."""
        raise NotImplementedError

    def _add_bias(self):
        if self.bias4 is not None:
            np.add(self.out4, self.bias4, out=self.out4)

    def backward(self, dout, input_grad=True):
        """dout : (N, F, OH, OW) -> (dx (N, C, H, W) or None without input_grad, dweight (F, C, KH, KW), dbias (F,)).

        dbias = dout summed over (n, oh, ow); dweight and dx as the strategy computes them (``_backward``).
        The column gradient is written over the columns, so a strategy's forward has one backward.
        """
        F = self.weight.shape[0]
        d = dout.transpose(1, 2, 3, 0).reshape(F, -1)  # (F, OH*OW*N), a copy only if not (F, OH, OW, N) memory
        dbias = d.sum(axis=1)
        dx4, dweight = self._backward(d, input_grad)
        return (None if dx4 is None else from_chwn(dx4)), dweight, dbias

    def _backward(self, d, input_grad):
        """d : (F, OH*OW*N) -> (dx4 (C, H, W, N) or None, dweight (F, C, KH, KW))."""
        raise NotImplementedError
