"""The fast array kernels, function for function beside the loop versions in ``reference.py``.

Dimension symbols used throughout nanocnn:
    N  batch size            C  channels (F: output channels)    H, W    input height and width
    KH, KW  kernel size      SH, SW  stride                       PH, PW  padding
    OH, OW  output size, from the one formula in ``conv_output_size``.

The kernels loop only over the KH*KW kernel offsets; every other axis is a numpy array axis.
Internally activations live in memory as (C, H, W, N), batch innermost, and are handed between
layers as (N, C, H, W) views of that memory (``from_chwn``), so the public shapes stay NCHW. With
the batch innermost, every window copy in im2col, col2im and pooling moves runs of N (and, at
stride 1, of OW*N) contiguous numbers instead of runs of OW, one matrix product covers the whole
batch, and its (F, OH*OW*N) result is already the next layer's layout: no transposes.

Nothing here checks arguments (``validation.py`` does, in the layers) and nothing here keeps state
between calls except per-thread scratch memory, so every kernel is safe to call from many threads.
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


def windows(xp, kernel, out_hw, stride):
    """All receptive fields of xp (C, Hp, Wp, N) as one read-only view (C, KH, KW, OH, OW, N), no copy.

    view[c, kh, kw, oh, ow, n] = xp[c, oh*SH + kh, ow*SW + kw, n]: the same memory reached through
    strides, so im2col is a single copy instead of KH*KW slice copies.
    """
    (KH, KW), (OH, OW), (SH, SW) = kernel, out_hw, stride
    sc, sh, sw, sn = xp.strides
    shape, strides = (xp.shape[0], KH, KW, OH, OW, xp.shape[3]), (sc, sh, sw, SH * sh, SW * sw, sn)
    return as_strided(xp, shape, strides, writeable=False)


def im2col(x, kernel, stride, padding, out=None):
    """Gather every receptive field into a column matrix.

    x : (N, C, H, W) -> cols : (C*KH*KW, OH*OW*N), rows ordered (c, kh, kw) like the weight's
    (F, C, KH, KW) layout, columns ordered (oh, ow, n).
    out : optional array of at least C*KH*KW*OH*OW*N elements of x's dtype to write cols into.
    """
    N, C, H, W = x.shape
    (KH, KW), (OH, OW) = kernel, output_hw((H, W), kernel, stride, padding)
    xp = to_chwn(x, padding)  # (C, Hp, Wp, N)
    shape = (C, KH, KW, OH, OW, N)
    cols = np.empty(shape, dtype=x.dtype) if out is None else out[: np.prod(shape)].reshape(shape)
    cols[...] = windows(xp, kernel, (OH, OW), stride)  # the one copy
    return cols.reshape(C * KH * KW, OH * OW * N)


def col2im(dcols, x_shape, kernel, stride, padding):
    """Adjoint of im2col: add each column's entries back into the input position they came from.

    dcols : (C*KH*KW, OH*OW*N) -> dx : x_shape = (N, C, H, W) (a view of a (C, H, W, N) array)
    """
    N, C, H, W = x_shape
    (KH, KW), (PH, PW) = kernel, padding
    OH, OW = output_hw((H, W), kernel, stride, padding)
    dcols = dcols.reshape(C, KH, KW, OH, OW, N)
    dxp = np.zeros((C, H + 2 * PH, W + 2 * PW, N), dtype=dcols.dtype)
    for i in range(KH):
        for j in range(KW):
            window(dxp, i, j, (OH, OW), stride)[...] += dcols[:, i, j]  # slice-accumulate, no np.add.at
    return from_chwn(dxp[:, PH : PH + H, PW : PW + W, :])


def conv2d_forward(x, weight, bias, stride, padding, workspace=None):
    """x : (N, C, H, W), weight : (F, C, KH, KW), bias : (F,) or None -> (out, cols).

    out : (N, F, OH, OW), a view of (F, OH, OW, N) memory; cols : (C*KH*KW, OH*OW*N), written into
    ``workspace`` (a 1-D array, default: this thread's scratch), which conv2d_backward needs again.
    """
    N, _, H, W = x.shape
    F, C, KH, KW = weight.shape
    OH, OW = output_hw((H, W), (KH, KW), stride, padding)
    size = C * KH * KW * OH * OW * N
    cols = im2col(x, (KH, KW), stride, padding, out=scratch(size, x.dtype) if workspace is None else workspace)
    out = weight.reshape(F, -1) @ cols  # (F, OH*OW*N)
    if bias is not None:
        out += bias[:, None]
    return from_chwn(out.reshape(F, OH, OW, N)), cols


def conv2d_backward(cols, weight, dout, x_shape, stride, padding, input_grad=True):
    """Gradients of conv2d_forward from its cols: returns (dx, dweight, dbias); dx None without input_grad.

    dout : (N, F, OH, OW); dweight = dout @ cols.T, dbias = dout summed over (n, oh, ow),
    dx = col2im(W.T @ dout). W.T @ dout is written over ``cols``, which dweight no longer needs.
    """
    F = weight.shape[0]
    d = dout.transpose(1, 2, 3, 0).reshape(F, -1)  # (F, OH*OW*N), a copy only if not (F, OH, OW, N) memory
    dweight = (cols @ d.T).T.reshape(weight.shape)  # = d @ cols.T, ~1.5x faster in OpenBLAS here
    dbias = d.sum(axis=1)
    if not input_grad:
        return None, dweight, dbias
    dcols = np.matmul(weight.reshape(F, -1).T, d, out=cols)  # (C*KH*KW, OH*OW*N)
    return col2im(dcols, x_shape, weight.shape[2:], stride, padding), dweight, dbias


def maxpool2d_forward(x, kernel, stride, padding):
    """x : (N, C, H, W) -> (out, xp): out (N, C, OH, OW), xp the -inf padded (C, Hp, Wp, N) input.

    max is separable: first over the kernel's rows, whose views copy whole Wp*N rows, then over its
    columns, whose views copy runs of only N (1.5x faster than all KH*KW views at N=8).
    """
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
    dxp = np.zeros(xp.shape, dtype=dout.dtype)
    overlap = any(s < k for s, k in zip(stride, kernel))
    unclaimed = None
    for k in range(KH * KW):
        i, j = divmod(k, KW)
        hit = window(xp, i, j, out_hw, stride) == best  # this offset holds the max...
        if unclaimed is None:
            unclaimed = ~hit
        else:
            hit &= unclaimed  # ...and no earlier offset did
            if k < KH * KW - 1:
                unclaimed ^= hit
        target = window(dxp, i, j, out_hw, stride)
        if overlap:
            target += grad * hit
        else:  # disjoint windows: plain writes
            np.multiply(grad, hit, out=target)
    return from_chwn(dxp[:, PH : PH + H, PW : PW + W, :])


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
