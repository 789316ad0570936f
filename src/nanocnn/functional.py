"""The fast array kernels, function for function beside the loop versions in ``reference.py``.

Dimension symbols used throughout nanocnn:
    N  batch size            C  channels (F: output channels)    H, W    input height and width
    KH, KW  kernel size      SH, SW  stride                       PH, PW  padding
    OH, OW  output size, from the one formula in ``conv_output_size``.

The kernels loop only over the KH*KW kernel offsets; every other axis is a numpy array axis.
Internally activations live in memory as (C, H, W, N), batch innermost, and are handed between
layers as (N, C, H, W) views of that memory (``from_chwn``), so the public shapes stay NCHW. With
the batch innermost, every window copy in a convolution or a pooling moves runs of N (and, at
stride 1, of OW*N) contiguous numbers instead of runs of OW, one matrix product covers the whole
batch, and its (F, OH*OW*N) result is already the next layer's layout: no transposes. The
convolution's three strategies (im2col, kernel rows, space to depth) live in ``convolution.py``;
conv2d_forward and conv2d_backward here pick one from the geometry.

Nothing here checks arguments (``validation.py`` does, in the layers) and nothing here keeps state
between calls except per-thread scratch memory, so every kernel is safe to call from many threads.
"""

import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import convolution

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

    numpy (2.4) has no SIMD loop for maximum with a scalar operand: np.maximum(x, zeros) ran 2.8x
    faster than np.maximum(x, 0) on 113k floats here, the reads of the zeros included.
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


def conv2d_forward(x, weight, bias, stride, padding, workspace=None, out=None, backward=True):
    """x : (N, C, H, W), weight : (F, C, KH, KW), bias : (F,) or None -> (out, cache).

    out : (N, F, OH, OW), a view of (F, OH, OW, N) memory (written into ``out``, an (F, OH, OW, N)
    array, when given). The strategy comes from the geometry (``convolution.strategy``; with
    backward=False a forward-only one may be taken); its arrays go into ``workspace`` (a 1-D array of at
    least ``convolution.workspace_size`` elements, default: this thread's scratch); ``cache``, the
    strategy object, is what conv2d_backward needs.
    """
    N, _, H, W = x.shape
    F, C, KH, KW = weight.shape
    OH, OW = output_hw((H, W), (KH, KW), stride, padding)
    if workspace is None:
        workspace = scratch(convolution.workspace_size(x.shape, weight.shape, stride, padding, backward), x.dtype)
    out4 = np.empty((F, OH, OW, N), dtype=x.dtype) if out is None else out
    conv = convolution.STRATEGIES[convolution.strategy(C, (KH, KW), stride, backward)]
    cache = conv(x.shape, weight, bias, stride, padding, workspace, out4)
    cache(x.transpose(1, 2, 3, 0))
    return from_chwn(out4), cache


def conv2d_backward(cache, weight, dout, x_shape, stride, padding, input_grad=True):
    """Gradients of conv2d_forward from its cache: returns (dx, dweight, dbias); dx None without input_grad.

    dout : (N, F, OH, OW); dbias = dout summed over (n, oh, ow); dweight and dx as the forward's strategy
    computes them (convolution.py). The column gradient is written over the columns.
    """
    if cache.kind == convolution.SLABS:
        raise ValueError("conv2d_backward: the forward ran without backward (slabs keep no columns)")
    F = weight.shape[0]
    d = dout.transpose(1, 2, 3, 0).reshape(F, -1)  # (F, OH*OW*N), a copy only if not (F, OH, OW, N) memory
    dbias = d.sum(axis=1)
    if cache.kind == convolution.IM2COL:
        dx4, dweight = convolution.im2col_backward(cache, d, input_grad)
    elif cache.kind == convolution.ROWS:
        dx4, dweight = convolution.rows_backward(cache, d, input_grad)
    else:
        d4 = d.reshape((F,) + dout.shape[2:] + dout.shape[:1])  # (F, OH, OW, N)
        dx4, dweight = convolution.s2d_backward(cache, d4, input_grad)
    return (None if dx4 is None else from_chwn(dx4)), dweight, dbias


def tiles(kernel, stride, padding):
    """True when the pooling windows tile the input: kernel == stride, no padding (e.g. the usual 2x2 pool)."""
    return tuple(kernel) == tuple(stride) and tuple(padding) == (0, 0)


def maxpool2d_forward(x, kernel, stride, padding):
    """x : (N, C, H, W) -> (out, xp): out (N, C, OH, OW), xp the -inf padded (C, Hp, Wp, N) input.

    max is separable: first over the kernel's rows, whose views copy whole Wp*N rows, then over its
    columns, whose views copy runs of only N (1.5x faster than all KH*KW views at N=8). Windows that
    tile the input take ``maxpool_tiles_forward``.
    """
    if tiles(kernel, stride, padding):
        xp = to_chwn(x)
        return from_chwn(maxpool_tiles_forward(xp, kernel)), xp
    (KH, KW), (SH, SW) = kernel, stride
    OH, OW = output_hw(x.shape[2:], kernel, stride, padding)
    xp = to_chwn(x, padding, -np.inf)  # (C, Hp, Wp, N)
    rows = window(xp, 0, 0, (OH, xp.shape[2]), (SH, 1)).copy()  # (C, OH, Wp, N)
    for i in range(1, KH):
        np.maximum(rows, window(xp, i, 0, (OH, xp.shape[2]), (SH, 1)), out=rows)
    best = window(rows, 0, 0, (OH, OW), (1, SW)).copy()  # (C, OH, OW, N)
    for j in range(1, KW):
        np.maximum(best, window(rows, 0, j, (OH, OW), (1, SW)), out=best)
    return from_chwn(best), xp


def _tiled(a, kernel, OH, OW):
    """a : (C, H, W, N) -> the (C, OH, KH, OW, KW, N) view of its whole windows (cropped, never a copy)."""
    (KH, KW), (C, _, _, N) = kernel, a.shape
    return a[:, : OH * KH, : OW * KW].reshape((C, OH, KH, OW, KW, N), copy=False)


def maxpool_tiles_forward(x4, kernel, out=None, rows=None):
    """x4 : (C, H, W, N) -> (C, OH, OW, N), OH = H // KH, for windows that tile the input (kernel == stride).

    The windows are axes of a reshaped view, so each max reads two operands in place: over the kernel's
    rows runs of OW*KW*N numbers, then over its columns runs of N. Same maxima as the general path
    (max is exact), one pass less (no copy of the first row). out, rows: optional (C, OH, OW, N) and
    (C, OH, OW*KW, N) arrays to write the result and the row maxima into.
    """
    (KH, KW), (C, H, W, N) = kernel, x4.shape
    OH, OW = H // KH, W // KW
    v = _tiled(x4, kernel, OH, OW).reshape((C, OH, KH, OW * KW, N), copy=False)
    rows = v[:, :, 0] if KH == 1 else np.maximum(v[:, :, 0], v[:, :, 1], out=rows)  # (C, OH, OW*KW, N)
    for i in range(2, KH):
        np.maximum(rows, v[:, :, i], out=rows)
    r = rows.reshape((C, OH, OW, KW, N), copy=False)
    best = np.empty((C, OH, OW, N), dtype=x4.dtype) if out is None else out
    if KW == 1:
        np.copyto(best, r[:, :, :, 0])
    else:
        np.maximum(r[:, :, :, 0], r[:, :, :, 1], out=best)
    for j in range(2, KW):
        np.maximum(best, r[:, :, :, j], out=best)
    return best


def maxpool2d_backward(dout, out, xp, x_shape, kernel, stride, padding):
    """dout, out : (N, C, OH, OW), xp from maxpool2d_forward -> dx : (N, C, H, W).

    Each window's gradient goes to its first maximum in row-major order (as in PyTorch), found again by
    comparing each kernel offset's view with the output, each window claimed by its first match; this
    keeps the forward pass a bare chain of np.maximum (no argmax bookkeeping, slow in numpy).
    """
    N, C, H, W = x_shape
    (KH, KW), (PH, PW) = kernel, padding
    grad, best = dout.transpose(1, 2, 3, 0), out.transpose(1, 2, 3, 0)  # (C, OH, OW, N) views
    out_hw = best.shape[1:3]
    if tiles(kernel, stride, padding):  # windows tile the input: each input pixel written once
        whole = out_hw[0] * KH == H and out_hw[1] * KW == W
        dx = (np.empty if whole else np.zeros)((C, H, W, N), dtype=dout.dtype)
        views, targets = _tiled(xp, kernel, *out_hw), _tiled(dx, kernel, *out_hw)
        window_at = lambda a, i, j: a[:, :, i, :, j]  # noqa: E731
    else:
        dx = np.zeros(xp.shape, dtype=dout.dtype)
        views, targets = xp, dx
        window_at = lambda a, i, j: window(a, i, j, out_hw, stride)  # noqa: E731
    overlap = any(s < k for s, k in zip(stride, kernel))
    unclaimed = None
    for k in range(KH * KW):
        i, j = divmod(k, KW)
        hit = window_at(views, i, j) == best  # this offset holds the max...
        if unclaimed is None:
            unclaimed = ~hit
        else:
            hit &= unclaimed  # ...and no earlier offset did
            if k < KH * KW - 1:
                unclaimed ^= hit
        target = window_at(targets, i, j)
        if overlap:
            target += grad * hit
        else:  # disjoint windows: plain writes
            np.multiply(grad, hit, out=target)
    return from_chwn(dx[:, PH : PH + H, PW : PW + W, :])


def linear_forward(x, weight, bias):
    """x : (N, in), weight : (out, in), bias : (out,) or None -> (N, out) = x @ weight.T + bias."""
    out = x @ weight.T
    if bias is not None:
        out += bias
    return out


def linear_backward(x, weight, dout, input_grad=True):
    """Returns (dx, dweight, dbias) for linear_forward; dx None without input_grad."""
    return (dout @ weight if input_grad else None), dout.T @ x, dout.sum(axis=0)


def relu_forward(x):
    """max(x, 0) elementwise, any shape; compared against zeros laid out like x (see zeros_like)."""
    return np.maximum(x, zeros_like(x))


def relu_backward(dout, mask):
    """The gradient passes where the input was positive, mask = x > 0 (0 at x == 0, as in PyTorch)."""
    return dout * mask  # a multiply by a bool mask is ~10x faster than np.where
