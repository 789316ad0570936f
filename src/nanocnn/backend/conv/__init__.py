"""Four ways to compute one 2-D convolution on (C, H, W, N) memory, and the rule that picks one by geometry.

All four compute the sums of ``nanocnn.nn.reference.conv2d_forward``, grouped differently, so their float32
results differ in rounding only (~1e-7 relative; ~1e-15 in float64):

    im2col          every receptive field copied into one column matrix, one product (im2col.py).
    kernel rows     stride 1: the input copied only KW times, KH products on row-shifted views (rows.py).
    space to depth  stride > 1: each SH x SW block regrouped into channels, one stacked product (space_to_depth.py).
    slabs           forward only: each output row's columns one contiguous slab of a KW-fold copy (slabs.py).

A strategy is a class (common.Strategy): its constructor lays out its arrays in one workspace, each call
runs only the copies and products, and ``backward`` is its own method, next to its forward. ``forward``
below makes one per call; the inference plan (backend/plan.py) keeps one per thread and input shape.
"""

import numpy as np

from ..layout import from_chwn, scratch
from .common import geometry
from .im2col import Im2col
from .rows import Rows
from .slabs import Slabs
from .space_to_depth import SpaceToDepth
from .space_to_depth import sizes as s2d_sizes

IM2COL, ROWS, SPACE_TO_DEPTH, SLABS = Im2col.kind, Rows.kind, SpaceToDepth.kind, Slabs.kind
STRATEGIES = {cls.kind: cls for cls in (Im2col, Rows, SpaceToDepth, Slabs)}


def strategy(channels, kernel, stride, backward=True):
    """The fastest strategy for this geometry, as measured here (benchmarks/README.md has the figures).

    - Forward only (``backward=False``, inference), stride 1 and a kernel larger than 1x1: slabs.
    - One input channel: im2col. Its product has only KH*KW rows to sum, and kernel rows would make that KW.
    - Stride 1, more channels, KH > 1: kernel rows.
    - Stride > 1 with the stride no larger than the kernel: space to depth.
    - A stride larger than the kernel skips input pixels, which space to depth would still copy: im2col.
    """
    (KH, KW), (SH, SW) = kernel, stride
    if not backward and (SH, SW) == (1, 1) and KH * KW > 1:
        return SLABS
    if channels == 1:
        return IM2COL
    if (SH, SW) == (1, 1):
        return ROWS if KH > 1 else IM2COL
    if SH <= KH and SW <= KW:
        return SPACE_TO_DEPTH
    return IM2COL


def workspace_size(x_shape, weight_shape, stride, padding, backward=True):
    """Elements of workspace the chosen strategy needs for x (N, C, H, W); backward=False: forward only."""
    N, C, H, W, F, KH, KW, OH, OW = geometry(x_shape, weight_shape, stride, padding)
    M = OH * OW * N
    kind = strategy(C, (KH, KW), stride, backward)
    if kind == SLABS:
        return H * C * KW * OW * N
    if kind == IM2COL:
        return C * KH * KW * M + C * (H + 2 * padding[0]) * (W + 2 * padding[1]) * N
    if kind == ROWS:
        Hp = H + 2 * padding[0]
        return C * KW * Hp * OW * N + max(F, C * KW if backward else 0) * M
    KH2, KW2, Hs, Ws = s2d_sizes(KH, KW, OH, OW, stride)
    return (C * stride[0] * stride[1] + KH2 * KW2 * F) * Hs * Ws * N


def make(x_shape, weight, bias, stride, padding, workspace, out4, backward=True):
    """The strategy object for this geometry, its arrays laid out in ``workspace``, writing into ``out4``."""
    kind = strategy(x_shape[1], weight.shape[2:], stride, backward)
    return STRATEGIES[kind](x_shape, weight, bias, stride, padding, workspace, out4)


def forward(x, weight, bias, stride, padding, workspace=None, backward=True):
    """x : (N, C, H, W), weight : (F, C, KH, KW), bias : (F,) or None -> (out, strategy).

    out : (N, F, OH, OW), a view of (F, OH, OW, N) memory. The strategy's arrays go into ``workspace`` (1-D,
    at least ``workspace_size`` elements; default: this thread's scratch); the strategy object is what
    backward needs (``strategy.backward(dout, input_grad)``). backward=False may take a forward-only one.
    """
    F = weight.shape[0]
    N, _, H, W, _, _, _, OH, OW = geometry(x.shape, weight.shape, stride, padding)
    if workspace is None:
        workspace = scratch(workspace_size(x.shape, weight.shape, stride, padding, backward), x.dtype)
    out4 = np.empty((F, OH, OW, N), dtype=x.dtype)
    conv = make(x.shape, weight, bias, stride, padding, workspace, out4, backward)
    conv(x.transpose(1, 2, 3, 0))
    return from_chwn(out4), conv
