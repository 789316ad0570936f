"""Max pooling on (C, H, W, N) memory: a chain of np.maximum over shifted views, and its gradient.

Windows that tile the input (kernel == stride, no padding: the usual 2x2 pool) are axes of a reshaped view,
read in place; other windows are strided views of the -inf padded input. Both give the maxima of
``nanocnn.nn.reference.maxpool2d_forward`` exactly (max is exact), and the gradient goes to each window's
first maximum in row-major order, as in PyTorch.
"""

import numpy as np

from .layout import from_chwn, output_hw, to_chwn, window


def windows_tile(kernel, stride, padding):
    """Whether the pooling windows tile the input: kernel == stride and no padding (e.g. the usual 2x2 pool)."""
    return tuple(kernel) == tuple(stride) and tuple(padding) == (0, 0)


def maxpool2d_forward(x, kernel, stride, padding):
    """x : (N, C, H, W) -> (out, xp): out (N, C, OH, OW), xp the -inf padded (C, Hp, Wp, N) input.

    max is separable: first over the kernel's rows, whose views copy whole Wp*N rows, then over its
    columns, whose views copy runs of only N. Windows that tile the input take ``maxpool_tiles_forward``.
    """
    if windows_tile(kernel, stride, padding):
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
    rows runs of OW*KW*N numbers, then over its columns runs of N. out, rows: optional (C, OH, OW, N) and
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
    if windows_tile(kernel, stride, padding):  # each input pixel written once
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


def avgpool2d_forward(x, kernel, stride, padding):
    """x : (N, C, H, W) -> (N, C, OH, OW): the mean of each KH x KW window, zero padding counted in the divisor
    (PyTorch's count_include_pad=True). Windows that tile the input are axes of a reshaped view."""
    (KH, KW), OH_OW = kernel, output_hw(x.shape[2:], kernel, stride, padding)
    if windows_tile(kernel, stride, padding):
        total = _tiled(to_chwn(x), kernel, *OH_OW).sum(axis=(2, 4))  # (C, OH, OW, N)
    else:
        xp = to_chwn(x, padding)  # (C, Hp, Wp, N), zero padded
        total = window(xp, 0, 0, OH_OW, stride).copy()
        for k in range(1, KH * KW):
            total += window(xp, *divmod(k, KW), OH_OW, stride)
    total /= x.dtype.type(KH * KW)
    return from_chwn(total)


def avgpool2d_backward(dout, x_shape, kernel, stride, padding):
    """dout : (N, C, OH, OW) -> dx : (N, C, H, W): each window hands dout / (KH*KW) to each of its cells."""
    N, C, H, W = x_shape
    (KH, KW), (PH, PW) = kernel, padding
    share = dout.transpose(1, 2, 3, 0) / dout.dtype.type(KH * KW)  # (C, OH, OW, N)
    dxp = np.zeros((C, H + 2 * PH, W + 2 * PW, N), dtype=dout.dtype)
    for k in range(KH * KW):
        window(dxp, *divmod(k, KW), share.shape[1:3], stride)[...] += share
    return from_chwn(dxp[:, PH : PH + H, PW : PW + W, :])


def global_avgpool_forward(x):
    """x : (N, C, H, W) -> (N, C, 1, 1): the mean of each whole map."""
    x4 = to_chwn(x)
    return from_chwn(x4.mean(axis=(1, 2))[:, None, None, :])


def global_avgpool_backward(dout, x_shape):
    """dout : (N, C, 1, 1) -> dx : (N, C, H, W) = dout / (H*W) at every cell."""
    N, C, H, W = x_shape
    share = dout[:, :, 0, 0].T / dout.dtype.type(H * W)  # (C, N)
    return from_chwn(np.broadcast_to(share[:, None, None, :], (C, H, W, N)).copy())
