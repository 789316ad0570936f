"""Batch normalisation on (C, H, W, N) memory: each channel's N*H*W values one contiguous row, so every statistic
is one pass over contiguous memory, and the output is already in the layout the next convolution reads."""

import numpy as np

from .layout import from_chwn, to_chwn


def rows(x):
    """x : (N, C, H, W) -> its (C, N*H*W) rows (a view when x is a view of (C, H, W, N) memory), and x4's shape."""
    x4 = to_chwn(x)
    return x4.reshape(x4.shape[0], -1), x4.shape


def train_forward(x, gamma, beta, eps):
    """Normalise with the batch's own statistics: x (N, C, H, W) -> (out, mean (C,), var (C,), cache).

    mean and var (biased, divided by M = N*H*W) are the batch's; out = (x - mean) / sqrt(var + eps) * gamma
    + beta, gamma and beta (C,) or None (no affine). cache = (x - mean (C, M), 1 / sqrt(var + eps) (C,)).
    Each pass over the data is one numpy call: the mean, the centring, the variance (einsum: no squares
    array), the scaling, the shift.
    """
    x2, shape = rows(x)
    M = x2.shape[1]
    mean = x2.mean(axis=1)
    centred = x2 - mean[:, None]  # (C, M)
    var = np.einsum("ij,ij->i", centred, centred) / x.dtype.type(M)
    invstd = 1 / np.sqrt(var + x.dtype.type(eps))
    out = centred * (invstd if gamma is None else gamma * invstd)[:, None]
    if beta is not None:
        out += beta[:, None]
    return from_chwn(out.reshape(shape)), mean, var, (centred, invstd)


def train_backward(dout, cache, gamma):
    """dout (N, C, H, W) -> (dx, dgamma (C,), dbeta (C,)) of train_forward, the batch statistics' own gradient
    included: with xhat = (x - mean) * invstd, dx = gamma * invstd * (dout - mean(dout) - xhat * mean(dout * xhat))
    per channel (docs/math.md: Batch normalisation)."""
    centred, invstd = cache
    d2, shape = rows(dout)
    M = dout.dtype.type(d2.shape[1])
    dbeta = d2.sum(axis=1)
    dgamma = np.einsum("ij,ij->i", d2, centred) * invstd  # sum of dout * xhat
    dx = centred * (invstd * dgamma / M)[:, None]  # xhat * mean(dout * xhat)
    np.subtract(d2, dx, out=dx)
    dx -= (dbeta / M)[:, None]
    dx *= (invstd if gamma is None else gamma * invstd)[:, None]
    return from_chwn(dx.reshape(shape)), dgamma, dbeta


def eval_forward(x, mean, var, gamma, beta, eps):
    """Normalise with fixed statistics (the running ones): out = x * scale + shift per channel, with
    scale = gamma / sqrt(var + eps) and shift = beta - mean * scale. cache = (x rows, mean, scale) for backward."""
    x2, shape = rows(x)
    invstd = 1 / np.sqrt(var + x.dtype.type(eps))
    scale = invstd if gamma is None else gamma * invstd
    shift = -mean * scale if beta is None else beta - mean * scale
    out = x2 * scale[:, None]
    out += shift[:, None]
    return from_chwn(out.reshape(shape)), (x2, mean, invstd)


def eval_backward(dout, cache, gamma):
    """dout -> (dx, dgamma, dbeta) of eval_forward: the statistics are constants, so dx = dout * scale."""
    x2, mean, invstd = cache
    d2, shape = rows(dout)
    dbeta = d2.sum(axis=1)
    dgamma = (d2 * ((x2 - mean[:, None]) * invstd[:, None])).sum(axis=1)
    dx = d2 * (invstd if gamma is None else gamma * invstd)[:, None]
    return from_chwn(dx.reshape(shape)), dgamma, dbeta
