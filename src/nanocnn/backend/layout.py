"""How activations lie in memory inside nanocnn, and the scratch memory each thread reuses.

Activations live in memory as (C, H, W, N), batch innermost, and are handed between layers as
(N, C, H, W) views of that memory (``from_chwn``), so the public shapes stay NCHW. With the batch
innermost, every window copy in a convolution or a pooling moves runs of N (and, at stride 1, of OW*N)
contiguous numbers instead of runs of OW, one matrix product covers the whole batch, and its
(F, OH*OW*N) result is already the next layer's layout: no transposes.

Nothing here keeps state between calls except per-thread scratch memory and shared read-only zeros, so
every function is safe to call from many threads.
"""

import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided

_local = threading.local()  # this thread's scratch array
_zeros = {}  # dtype -> a read-only array of zeros, replaced by a larger one when needed


def conv_output_size(size, kernel, stride, padding):
    """Output length of a convolution or pooling along one axis: OH = (H + 2*PH - KH) // SH + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def output_hw(hw, kernel, stride, padding):
    """(OH, OW) for an (H, W) input."""
    return tuple(conv_output_size(s, k, st, p) for s, k, st, p in zip(hw, kernel, stride, padding))


def scratch(size, dtype):
    """A 1-D array of ``size`` elements (contents undefined) that this thread reuses from call to call.

    For memory that is dead once a kernel returns (inference's column matrices): one array per thread,
    grown as needed, so repeated calls allocate nothing and threads never share it.
    """
    buf = getattr(_local, "buf", None)
    if buf is None or buf.dtype != dtype or buf.size < size:
        buf = _local.buf = np.empty(size, dtype=dtype)
    return buf[:size]


def zeros_like(x):
    """Read-only zeros laid out in memory like ``x`` (0 when x is not dense), shared by every thread.

    numpy has no SIMD loop for maximum with a scalar operand, so ReLU compares against an array of zeros
    laid out like its input (benchmarks/README.md has the measurement).
    """
    if x.size == 0 or any(s < 0 for s in x.strides):
        return x.dtype.type(0)
    order = np.argsort(x.strides, kind="stable")[::-1]  # axes from the largest stride down
    if not x.transpose(order).flags.c_contiguous:
        return x.dtype.type(0)
    zeros = _zeros.get(x.dtype)
    if zeros is None or zeros.size < x.size:
        zeros = np.zeros(max(x.size, 2 * (0 if zeros is None else zeros.size)), dtype=x.dtype)
        zeros.flags.writeable = False
        _zeros[x.dtype] = zeros  # one atomic store: other threads see the old array or this one
    return as_strided(zeros, x.shape, x.strides, writeable=False)


def to_chwn(x, padding=(0, 0), value=0.0):
    """x : (N, C, H, W), any memory order -> padded (C, H + 2*PH, W + 2*PW, N) C-contiguous array.

    No copy when x is already a view of such an array and there is no padding.
    """
    N, C, H, W = x.shape
    PH, PW = padding
    xt = x.transpose(1, 2, 3, 0)  # (C, H, W, N) view
    if PH == 0 and PW == 0 and xt.flags.c_contiguous:
        return xt
    if PH == 0 and PW == 0:
        return np.ascontiguousarray(xt)
    shape = (C, H + 2 * PH, W + 2 * PW, N)
    xp = np.zeros(shape, dtype=x.dtype) if value == 0 else np.full(shape, value, dtype=x.dtype)
    xp[:, PH : PH + H, PW : PW + W, :] = xt
    return xp


def from_chwn(a):
    """(C, H, W, N) array -> the (N, C, H, W) view of it that layers hand on."""
    return a.transpose(3, 0, 1, 2)


def window(xp, i, j, out_hw, stride):
    """The view of xp (C, Hp, Wp, N) that kernel offset (i, j) sees at every output position: (C, OH, OW, N)."""
    (OH, OW), (SH, SW) = out_hw, stride
    return xp[:, i : i + SH * (OH - 1) + 1 : SH, j : j + SW * (OW - 1) + 1 : SW, :]
