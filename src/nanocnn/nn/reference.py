"""Plain loop versions of the layers: the readable specification of the math and the test oracle.

These follow the article's method, one output position at a time, but with its defects fixed:
stride and padding are honoured in every gradient, biases get gradients, and rows (H) and columns (W)
are never swapped. They are slow on purpose; the fast layers must agree with them exactly.
Notation (docs/math.md uses the same): x (N, C, H, W), weight (F, C, KH, KW), bias (F,),
out and dout (N, F, OH, OW), xp the zero-padded x, (SH, SW) the stride, (PH, PW) the padding.
"""

import numpy as np


def _padded(x, padding, value=0.0):
    PH, PW = padding
    N, C, H, W = x.shape
    xp = np.full((N, C, H + 2 * PH, W + 2 * PW), value, dtype=x.dtype)
    xp[:, :, PH : PH + H, PW : PW + W] = x
    return xp


def _out_size(x_shape, kernel, stride, padding):
    (H, W), (KH, KW), (SH, SW), (PH, PW) = x_shape[2:], kernel, stride, padding
    return (H + 2 * PH - KH) // SH + 1, (W + 2 * PW - KW) // SW + 1


def conv2d_forward(x, weight, bias, stride=(1, 1), padding=(0, 0)):
    """out[n, :, oh, ow]: every filter times the window at (oh, ow), summed, plus the filter's bias."""
    F, C, KH, KW = weight.shape
    SH, SW = stride
    OH, OW = _out_size(x.shape, (KH, KW), stride, padding)
    xp = _padded(x, padding)
    out = np.zeros((x.shape[0], F, OH, OW), dtype=x.dtype)
    for n in range(x.shape[0]):
        for oh in range(OH):
            for ow in range(OW):
                window = xp[n, :, oh * SH : oh * SH + KH, ow * SW : ow * SW + KW]  # (C, KH, KW)
                out[n, :, oh, ow] = (weight * window[None]).sum(axis=(1, 2, 3))  # all F filters at once
                if bias is not None:
                    out[n, :, oh, ow] += bias
    return out


def conv2d_backward(x, weight, dout, stride=(1, 1), padding=(0, 0)):
    """Returns (dx, dweight, dbias) for out = conv2d_forward(x, weight, bias, stride, padding)."""
    F, C, KH, KW = weight.shape
    (SH, SW), (PH, PW) = stride, padding
    N, _, H, W = x.shape
    OH, OW = dout.shape[2:]
    xp = _padded(x, padding)
    # Kernel gradient: slide the output gradient over the input. Weight (kh, kw) met the input pixels
    # xp[oh*SH + kh, ow*SW + kw], so the slice starts at (kh, kw) and steps by the stride.
    dweight = np.zeros_like(weight)
    for kh in range(KH):
        for kw in range(KW):
            seen = xp[:, :, kh : kh + SH * (OH - 1) + 1 : SH, kw : kw + SW * (OW - 1) + 1 : SW]  # (N, C, OH, OW)
            for f in range(F):
                dweight[f, :, kh, kw] = (dout[:, f][:, None] * seen).sum(axis=(0, 2, 3))
    # Bias gradient: the bias was added at every output position.
    dbias = dout.sum(axis=(0, 2, 3))
    # Input gradient: each output position hands its gradient back to the window it was computed from.
    dxp = np.zeros_like(xp)
    for n in range(N):
        for oh in range(OH):
            for ow in range(OW):
                contribution = (dout[n, :, oh, ow][:, None, None, None] * weight).sum(axis=0)  # (C, KH, KW)
                dxp[n, :, oh * SH : oh * SH + KH, ow * SW : ow * SW + KW] += contribution
    return dxp[:, :, PH : PH + H, PW : PW + W], dweight, dbias


def maxpool2d_forward(x, kernel, stride, padding=(0, 0)):
    """Returns (out, argmax): the max of each window, and the flat index in the window of its first max."""
    (KH, KW), (SH, SW) = kernel, stride
    OH, OW = _out_size(x.shape, kernel, stride, padding)
    xp = _padded(x, padding, -np.inf)
    N, C = x.shape[:2]
    out = np.zeros((N, C, OH, OW), dtype=x.dtype)
    argmax = np.zeros((N, C, OH, OW), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    window = xp[n, c, oh * SH : oh * SH + KH, ow * SW : ow * SW + KW]
                    argmax[n, c, oh, ow] = np.argmax(window)  # the first max in row-major order
                    out[n, c, oh, ow] = window.max()
    return out, argmax


def maxpool2d_backward(x, dout, argmax, kernel, stride, padding=(0, 0)):
    """dx: each window's gradient goes to the one input pixel that was its maximum."""
    KW, (SH, SW), (PH, PW) = kernel[1], stride, padding
    N, C, H, W = x.shape
    dxp = np.zeros((N, C, H + 2 * PH, W + 2 * PW), dtype=dout.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(dout.shape[2]):
                for ow in range(dout.shape[3]):
                    kh, kw = divmod(int(argmax[n, c, oh, ow]), KW)
                    dxp[n, c, oh * SH + kh, ow * SW + kw] += dout[n, c, oh, ow]
    return dxp[:, :, PH : PH + H, PW : PW + W]


def avgpool2d_forward(x, kernel, stride, padding=(0, 0)):
    """The mean of each window, the zero padding counted in it (PyTorch's count_include_pad=True)."""
    (KH, KW), (SH, SW) = kernel, stride
    OH, OW = _out_size(x.shape, kernel, stride, padding)
    xp = _padded(x, padding)
    out = np.zeros(x.shape[:2] + (OH, OW), dtype=x.dtype)
    for oh in range(OH):
        for ow in range(OW):
            out[:, :, oh, ow] = xp[:, :, oh * SH : oh * SH + KH, ow * SW : ow * SW + KW].sum(axis=(2, 3)) / (KH * KW)
    return out


def avgpool2d_backward(x, dout, kernel, stride, padding=(0, 0)):
    """dx: each window hands an equal share of its gradient, dout / (KH*KW), to every cell of it."""
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, padding
    N, C, H, W = x.shape
    dxp = np.zeros((N, C, H + 2 * PH, W + 2 * PW), dtype=dout.dtype)
    for oh in range(dout.shape[2]):
        for ow in range(dout.shape[3]):
            share = dout[:, :, oh, ow][:, :, None, None] / (KH * KW)
            dxp[:, :, oh * SH : oh * SH + KH, ow * SW : ow * SW + KW] += share
    return dxp[:, :, PH : PH + H, PW : PW + W]


def batch_norm_forward(x, gamma, beta, eps, mean=None, var=None):
    """Each channel's values over the whole batch (n, h, w) shifted by their mean and divided by their standard
    deviation (the batch's own when mean and var are None, biased), then scaled by gamma and shifted by beta."""
    N, C, H, W = x.shape
    out = np.zeros_like(x)
    means, variances = np.zeros(C, dtype=x.dtype), np.zeros(C, dtype=x.dtype)
    for c in range(C):
        values = x[:, c]  # (N, H, W): every value of channel c
        m = values.sum() / values.size if mean is None else mean[c]
        v = ((values - m) ** 2).sum() / values.size if var is None else var[c]
        means[c], variances[c] = m, v
        g, b = (1.0, 0.0) if gamma is None else (gamma[c], beta[c])
        for n in range(N):
            out[n, c] = (x[n, c] - m) / np.sqrt(v + eps) * g + b
    return out, means, variances


def batch_norm_backward(x, gamma, dout, eps, mean=None, var=None):
    """Returns (dx, dgamma, dbeta) for batch_norm_forward; with the batch's statistics the gradient also flows
    through the mean and the variance, which depend on every value of the channel."""
    N, C, H, W = x.shape
    dx, dgamma, dbeta = np.zeros_like(x), np.zeros(C, dtype=x.dtype), np.zeros(C, dtype=x.dtype)
    for c in range(C):
        values, d = x[:, c], dout[:, c]
        M = values.size
        m = values.sum() / M if mean is None else mean[c]
        v = ((values - m) ** 2).sum() / M if var is None else var[c]
        invstd = 1 / np.sqrt(v + eps)
        xhat = (values - m) * invstd
        g = 1.0 if gamma is None else gamma[c]
        dbeta[c], dgamma[c] = d.sum(), (d * xhat).sum()
        dxhat = d * g
        if mean is None:  # through xhat's own mean and variance (docs/math.md: Batch normalisation)
            dx[:, c] = invstd / M * (M * dxhat - dxhat.sum() - xhat * (dxhat * xhat).sum())
        else:
            dx[:, c] = dxhat * invstd
    return dx, dgamma, dbeta


def linear_forward(x, weight, bias):
    """out[n, o] = sum_i x[n, i] * weight[o, i] + bias[o], one example at a time."""
    out = np.zeros((x.shape[0], weight.shape[0]), dtype=x.dtype)
    for n in range(x.shape[0]):
        out[n] = (weight * x[n][None, :]).sum(axis=1) + bias
    return out


def linear_backward(x, weight, dout):
    """Returns (dx, dweight, dbias) for out = linear_forward(x, weight, bias)."""
    dx, dweight = np.zeros_like(x), np.zeros_like(weight)
    for n in range(x.shape[0]):
        dx[n] = (dout[n][:, None] * weight).sum(axis=0)
        dweight += dout[n][:, None] * x[n][None, :]
    return dx, dweight, dout.sum(axis=0)


def softmax_cross_entropy(logits, labels):
    """Mean of -log softmax(logits[n])[labels[n]] and its gradient, one example at a time."""
    N = logits.shape[0]
    loss, dlogits = 0.0, np.zeros_like(logits)
    for n in range(N):
        z = logits[n] - logits[n].max()  # shifting by the max changes nothing but prevents overflow
        log_total = np.log(np.exp(z).sum())  # >= log(1): finite
        loss -= z[labels[n]] - log_total  # -log p[y], without ever forming a p that underflows to 0
        dlogits[n] = np.exp(z - log_total)  # p
        dlogits[n, labels[n]] -= 1  # d(-log p_y)/dz = p - onehot(y)
    return loss / N, dlogits / N
