"""The layers' array functions, function for function beside the loop versions in ``reference.py``.

Dimension symbols used throughout nanocnn:
    N  batch size            C  channels (F: output channels)    H, W    input height and width
    KH, KW  kernel size      SH, SW  stride                       PH, PW  padding
    OH, OW  output size, from the one formula in ``conv_output_size`` (in backend/layout.py, imported here).

Each function here computes what its namesake in ``reference.py`` computes, on whole batches. Linear,
ReLU and the loss are a line or two of numpy each; convolution and max-pooling hand over to the backend
(``nanocnn.backend``), which keeps activations batch-innermost in memory and picks one of four
convolution strategies by geometry, and returns the same numbers up to float rounding (convolution) or
exactly (max-pooling). Nothing here checks arguments (the layers do) and nothing keeps state between
calls, so every function is safe to call from many threads.
"""

import numpy as np

from ..backend import conv, norm, pool
from ..backend.layout import conv_output_size, output_hw, zeros_like  # noqa: F401 (conv_output_size: re-exported)


def window_at(x, top, left, size, fill=0.0):
    """The (KH, KW) window of one example's x (C, H, W) whose first row and column are (top, left), in float64:
    (C, KH, KW), ``fill`` where it hangs over the border (the padding). For explaining a single output."""
    C, H, W = x.shape
    (KH, KW) = size
    window = np.full((C, KH, KW), fill, dtype=np.float64)
    r0, r1, c0, c1 = max(top, 0), min(top + KH, H), max(left, 0), min(left + KW, W)
    if r0 < r1 and c0 < c1:
        window[:, r0 - top : r1 - top, c0 - left : c1 - left] = x[:, r0:r1, c0:c1]
    return window


def covering(i, out_size, kernel, stride, padding):
    """The output indices o whose window (along one axis) covers input index i, and the kernel offset
    k = i + padding - o*stride at which each sees it: two int arrays, o ascending."""
    o = np.arange(out_size)
    k = i + padding - o * stride
    inside = (k >= 0) & (k < kernel)
    return o[inside], k[inside]


def conv2d_forward(x, weight, bias, stride, padding, workspace=None, backward=True):
    """out[n, f, oh, ow] = bias[f] + sum_{c, kh, kw} weight[f, c, kh, kw] * xpad[n, c, oh*SH + kh, ow*SW + kw].

    x : (N, C, H, W), weight : (F, C, KH, KW), bias : (F,) or None -> (out (N, F, OH, OW), cache), where
    cache is what ``conv2d_backward`` needs. ``workspace``: a 1-D array the backend may use for its copies
    of the input (``backend.conv.workspace_size`` elements); backward=False: nothing is kept for backward.
    """
    return conv.forward(x, weight, bias, stride, padding, workspace, backward)


def conv2d_backward(cache, dout, input_grad=True):
    """dout : (N, F, OH, OW) -> (dx (N, C, H, W), or None without input_grad; dweight (F, C, KH, KW); dbias (F,)).

    dbias[f] = sum of dout[:, f]; dweight[f, c, kh, kw] = sum of dout[n, f, oh, ow] * xpad[n, c, oh*SH + kh,
    ow*SW + kw]; dx: every output position hands dout times the kernel back to its window (docs/math.md).
    The cache is used up: the backend writes the column gradient over its copies of the input.
    """
    return cache.backward(dout, input_grad)


def maxpool2d_forward(x, kernel, stride, padding):
    """out[n, c, oh, ow] = max over the window at (oh*SH, ow*SW) of x padded with -inf.

    x : (N, C, H, W) -> (out (N, C, OH, OW), cache), cache being what ``maxpool2d_backward`` needs.
    """
    out, xp = pool.maxpool2d_forward(x, kernel, stride, padding)
    return out, (x.shape, xp, out)


def maxpool2d_backward(cache, dout, kernel, stride, padding):
    """dout : (N, C, OH, OW) -> dx : (N, C, H, W): each window's gradient goes to its first maximum in
    row-major order (as in PyTorch), so ties never count twice."""
    x_shape, xp, out = cache
    return pool.maxpool2d_backward(dout, out, xp, x_shape, kernel, stride, padding)


def avgpool2d_forward(x, kernel, stride, padding):
    """out[n, c, oh, ow] = the mean of the window at (oh*SH, ow*SW) of x padded with zeros, the padding counted:
    x : (N, C, H, W) -> (N, C, OH, OW)."""
    return pool.avgpool2d_forward(x, kernel, stride, padding)


def avgpool2d_backward(dout, x_shape, kernel, stride, padding):
    """dout : (N, C, OH, OW) -> dx : (N, C, H, W): every cell of a window gets dout / (KH*KW)."""
    return pool.avgpool2d_backward(dout, x_shape, kernel, stride, padding)


def global_avgpool_forward(x):
    """x : (N, C, H, W) -> (N, C, 1, 1), each map's mean."""
    return pool.global_avgpool_forward(x)


def global_avgpool_backward(dout, x_shape):
    """dout : (N, C, 1, 1) -> dx : (N, C, H, W) = dout / (H*W) everywhere."""
    return pool.global_avgpool_backward(dout, x_shape)


def batch_norm_forward(x, gamma, beta, eps, mean=None, var=None):
    """out[n, c, h, w] = (x[n, c, h, w] - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c].

    x : (N, C, H, W); gamma, beta : (C,) or None (no affine). Without ``mean`` and ``var`` (training) they are
    the batch's own, over (N, H, W), var biased; given (eval) they are fixed, e.g. the running statistics.
    Returns (out, mean, var, cache): the statistics used, and what ``batch_norm_backward`` needs.
    """
    if mean is None:
        out, mean, var, cache = norm.train_forward(x, gamma, beta, eps)
        return out, mean, var, ("batch", cache)
    out, cache = norm.eval_forward(x, mean, var, gamma, beta, eps)
    return out, mean, var, ("fixed", cache)


def batch_norm_backward(cache, dout, gamma):
    """dout : (N, C, H, W) -> (dx, dgamma (C,), dbeta (C,)). With the batch's statistics dx also flows through
    them: dx = gamma / sqrt(var + eps) / M * (M*dout - sum dout - xhat * sum(dout * xhat)), M = N*H*W
    (docs/math.md: Batch normalisation); with fixed statistics dx = dout * gamma / sqrt(var + eps)."""
    kind, state = cache
    return (norm.train_backward if kind == "batch" else norm.eval_backward)(dout, state, gamma)


def linear_forward(x, weight, bias):
    """x : (N, in), weight : (out, in), bias : (out,) or None -> (N, out) = x @ weight.T + bias."""
    out = x @ weight.T
    if bias is not None:
        out += bias
    return out


def linear_backward(x, weight, dout, input_grad=True):
    """Returns (dx = dout @ weight, dweight = dout.T @ x, dbias = dout summed over N); dx None without input_grad."""
    return (dout @ weight if input_grad else None), dout.T @ x, dout.sum(axis=0)


def relu_forward(x):
    """max(x, 0) elementwise, any shape (compared against zeros laid out like x: numpy's fastest loop)."""
    return np.maximum(x, zeros_like(x))


def relu_backward(dout, mask):
    """The gradient passes where the input was positive, mask = x > 0 (0 at x == 0, as in PyTorch)."""
    return dout * mask  # a multiply by a bool mask is faster than np.where
