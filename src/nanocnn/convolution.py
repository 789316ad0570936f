"""Four ways to compute one 2-D convolution, and the rule that picks one from the layer's geometry.

``functional.conv2d_forward`` / ``conv2d_backward`` are the entry points; they call ``strategy``, then
one of the classes below and its backward function (slabs: forward only). All four compute the same sums as
``reference.conv2d_forward`` on (C, H, W, N) memory, batch innermost, but group them differently, so
their float32 results differ in rounding only (~1e-7 relative; ~1e-15 in float64).

    im2col          every receptive field copied into one (C*KH*KW, OH*OW*N) column matrix, one product.
    kernel rows     stride 1: copy the input only KW times (one copy per kernel column),
                    ckw[c, j, h, ow, n] = xpad[c, h, ow + j, n], viewed as (C*KW, Hp*OW*N). Kernel row i
                    needs rows h = oh + i, the contiguous column range [i*OW*N, i*OW*N + OH*OW*N), so
                    out = sum_i W_i @ ckw[:, i*OW*N : ...] with W_i = weight[:, :, i, :] as (F, C*KW):
                    KH products that read the copy in place, KH*OH/Hp times less copying than im2col.
    space to depth  stride (SH, SW) > 1: regroup the input so each SH x SW block becomes SH*SW channels,
                    S[c, p, q, h, w, n] = xpad[c, SH*h + p, SW*w + q, n]; the kernel becomes a
                    KH2 x KW2 stride-1 kernel on S (KH2 = ceil(KH / SH)), all KH2*KW2 offsets stacked
                    into one (KH2*KW2*F, C*SH*SW) matrix: one product P = Wst @ S, then
                    out = sum_{i,j} P[i, j][:, i : i + OH, j : j + OW]: shifted views, no im2col.
    slabs           forward only: ckw[h, c, j, ow, n] = xpad[c, h, SW*ow + j, n], h outermost, so output
                    row r's im2col matrix, rows (i, c, j), is the contiguous slab of ckw from image row
                    SH*r - PH on: one product per output row that reads the copy in place.

A strategy is a class: the constructor lays out its arrays in one 1-D ``workspace`` (``workspace_size``
elements) and writes what never changes (zero borders), and each call ``conv(x4)`` runs only the copies
and products, so the inference plan (plan.py) keeps one per thread and calls it for every piece, while
``functional.conv2d_forward`` makes one per call. The workspace holds the strategy's "columns" (ckw, S
or the im2col matrix), which backward needs again, then scratch; backward writes the column gradient
over the columns. The output (``out4``) and dx are never views of the workspace.
"""

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

IM2COL, ROWS, SPACE_TO_DEPTH, SLABS = "im2col", "kernel rows", "space to depth", "slabs"


def strategy(channels, kernel, stride, backward=True):
    """The fastest strategy for this geometry (measured here, float32, one BLAS thread, us per image).

    Forward only (``backward=False``: inference), stride 1 and a kernel larger than 1x1: slabs, which keep
    nothing for a backward pass, copy the input only KW times and multiply each output row's columns in
    place (forward, side by side in one process, pieces of 54 and 41 images: a.conv1 21.3 against 22.4
    for im2col in blocks of rows, itself 24.7 against 40.6 for whole im2col at 18; b.conv2 104.9 against
    105.4 for blocks, 120.2 against 131.6 for kernel rows at 19). Otherwise, with backward:

    - One input channel: im2col. Its product has only KH*KW rows to sum, and kernel rows would make
      that KW (b.conv1 1->16 5x5 pad 2, batch 16: im2col 18.1, kernel rows 33.7; a.conv1 1->16 8x8:
      29.5 vs 46.4).
    - Stride 1, more channels, KH > 1: kernel rows (b.conv2 16->32 5x5 pad 2 forward, batch 16: 117 -> 88;
      forward + backward at batch 32: 478 -> 450).
    - Stride > 1 with the stride no larger than the kernel: space to depth (a.conv2 16->8 4x4 stride 2,
      forward at batch 16: 22.6 -> 18.1; forward + backward at 32: 70 -> 42).
    - A stride larger than the kernel skips input pixels, which space to depth would still copy and
      multiply: im2col.
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


def geometry(x_shape, weight_shape, stride, padding):
    """Everything the strategies derive from the shapes: (N, C, H, W, F, KH, KW, OH, OW)."""
    N, C, H, W = x_shape
    F, _, KH, KW = weight_shape
    OH = (H + 2 * padding[0] - KH) // stride[0] + 1
    OW = (W + 2 * padding[1] - KW) // stride[1] + 1
    return N, C, H, W, F, KH, KW, OH, OW


def _s2d_sizes(KH, KW, OH, OW, stride):
    """Space-to-depth kernel size (KH2, KW2) and grid size (Hs, Ws): the grid cells the outputs read."""
    KH2, KW2 = math.ceil(KH / stride[0]), math.ceil(KW / stride[1])
    return KH2, KW2, OH + KH2 - 1, OW + KW2 - 1


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
    KH2, KW2, Hs, Ws = _s2d_sizes(KH, KW, OH, OW, stride)
    return (C * stride[0] * stride[1] + KH2 * KW2 * F) * Hs * Ws * N


def _span(n_out, n_in, offset, step):
    """[lo, hi): the indices o < n_out with 0 <= step*o + offset < n_in."""
    lo = max(0, -(offset // step))
    hi = min(n_out, (n_in - 1 - offset) // step + 1)
    return lo, max(lo, hi)


def shifted(dst_shape, src_shape, offset, step):
    """The shifted, strided copy behind ckw and S: dst[:, a, b] = src[:, step[0]*a + offset[0], step[1]*b + offset[1]].

    Returns (inner, source, borders): index tuples of the dst positions whose source is inside src, of
    those sources, and of the dst positions outside it (zero), for (C, A, B, N) dst and (C, H, W, N) src.
    """
    (a0, a1), (b0, b1) = (_span(dst_shape[k], src_shape[k], offset[k - 1], step[k - 1]) for k in (1, 2))
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
    moves runs of only N numbers (a piece of 18 images: 72 bytes). Viewed as one void element each,
    the runs move as whole items: 2.1x faster for runs of 18 float32, 1.1x for 64, none from ~128 on
    (measured here), so longer runs take the plain copy. The bytes moved are the same.
    """
    run = dst.shape[-1] * dst.itemsize if dst.ndim else 0
    if 0 < run < RUN_BYTES and dst.strides[-1] == src.strides[-1] == dst.itemsize and src.dtype == dst.dtype:
        void = np.dtype((np.void, run))
        np.copyto(dst.view(void), src.view(void))
    else:
        np.copyto(dst, src)


def _span_sum(dst, terms, tmp):
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


def _zero_borders(dst, borders):
    for index in borders:
        dst[index] = 0


class Strategy:
    """One convolution of x (N, C, H, W) into out4 (F, OH, OW, N): constructed once, called per input.

    weight (F, C, KH, KW) and bias (F,) or None are read at every call (their arrays, not copies);
    ``columns`` is what backward needs, ``workspace`` the 1-D array it lives in.
    """

    kind = None

    def __init__(self, x_shape, weight, bias, stride, padding, workspace, out4):
        self.x_shape, self.weight, self.stride, self.padding = tuple(x_shape), weight, stride, padding
        self.workspace, self.out4 = workspace, out4
        self.bias4 = None if bias is None else bias.reshape(-1, 1, 1, 1)  # (F, 1, 1, 1) view
        self.geometry = geometry(x_shape, weight.shape, stride, padding)

    def _add_bias(self):
        if self.bias4 is not None:
            np.add(self.out4, self.bias4, out=self.out4)


class Im2col(Strategy):
    """Every receptive field copied into cols (C*KH*KW, OH*OW*N), rows (c, kh, kw), columns (oh, ow, n); one product."""

    kind = IM2COL

    def __init__(self, *args):
        super().__init__(*args)
        N, C, H, W, F, KH, KW, OH, OW = self.geometry
        (PH, PW), (SH, SW) = self.padding, self.stride
        size = C * KH * KW * OH * OW * N
        self.cols6 = self.workspace[:size].reshape(C, KH, KW, OH, OW, N)
        self.columns = self.cols6.reshape(C * KH * KW, OH * OW * N)
        xp = self.workspace[size : size + C * (H + 2 * PH) * (W + 2 * PW) * N].reshape(C, H + 2 * PH, W + 2 * PW, N)
        _zero_borders(xp, [(slice(None), slice(0, PH)), (slice(None), slice(PH + H, None))])
        _zero_borders(xp, [(slice(None), slice(None), slice(0, PW)), (slice(None), slice(None), slice(PW + W, None))])
        self.interior = xp[:, PH : PH + H, PW : PW + W]
        sc, sh, sw, sn = xp.strides  # view[c, kh, kw, oh, ow, n] = xp[c, oh*SH + kh, ow*SW + kw, n]: no copy
        self.windows = as_strided(xp, self.cols6.shape, (sc, sh, sw, SH * sh, SW * sw, sn), writeable=False)
        self.out2 = self.out4.reshape(F, -1)

    def __call__(self, x4):
        np.copyto(self.interior, x4)
        np.copyto(self.cols6, self.windows)  # the one copy
        np.matmul(self.weight.reshape(self.out2.shape[0], -1), self.columns, out=self.out2)
        self._add_bias()
        return self.out4


class Slabs(Strategy):
    """Forward only: every output row's im2col matrix is a contiguous slab of one KW-fold copy of the input.

    ckw[h, c, j, ow, n] = xpad[c, h, SW*ow + j, n] for the H rows of the image (the vertical padding is
    never stored). Output row r meets image rows SH*r + i - PH for kernel rows i in [i0, i1), and with h
    outermost its columns, rows (i, c, j), are ckw[SH*r + i0 - PH : SH*r + i1 - PH] read as one
    ((i1 - i0)*C*KW, OW*N) matrix in place: out[:, r] = W[:, (i0..i1, c, j)] @ slab, one product per output
    row (the rows with the same [i0, i1) as one batched call), KH*OH/H times less copying than im2col, and
    no products with rows of padding.
    """

    kind = SLABS

    def __init__(self, *args):
        super().__init__(*args)
        N, C, H, W, F, KH, KW, OH, OW = self.geometry
        (SH, SW), (PH, PW) = self.stride, self.padding
        ckw = self.workspace[: H * C * KW * OW * N].reshape(H, C, KW, OW, N)
        self.copies = []  # ckw[h, c, j, ow] = x[c, h, SW*ow + j - PW]
        for j in range(KW):
            dst = ckw[:, :, j].transpose(1, 0, 2, 3)  # (C, H, OW, N) view
            inner, source, borders = shifted(dst.shape, (C, H, W, N), (0, j - PW), (1, SW))
            _zero_borders(dst, borders)
            if inner is not None:
                self.copies.append((dst[inner], source))
        self.wr = np.empty((F, KH, C, KW), dtype=self.weight.dtype)  # the weight in the slabs' (i, c, j) order
        w2, out3, K = self.wr.reshape(F, -1), self.out4.reshape(F, OH, OW * N).transpose(1, 0, 2), C * KW
        # Output rows that meet the same kernel rows [i0, i1) form a run: one batched product covers it,
        # its slabs a strided view of ckw (consecutive slabs SH image rows apart), so numpy calls the same BLAS
        # product for each row without a Python call per row (the numbers are the per-row products')
        spans = [(max(0, PH - SH * r), min(KH, PH + H - SH * r)) for r in range(OH)]
        self.runs = []  # (out rows (R, F, OW*N), weight columns, slabs (R, (i1-i0)*K, OW*N)); None: zeros
        r0 = 0
        for r in range(1, OH + 1):
            if r < OH and spans[r] == spans[r0]:
                continue
            (i0, i1), out = spans[r0], out3[r0:r]
            if i0 >= i1:
                self.runs.append((out, None, None))
            else:
                first = ckw[SH * r0 + i0 - PH : SH * r0 + i1 - PH].reshape((i1 - i0) * K, OW * N)
                step = SH * ckw.strides[0]
                slabs = as_strided(first, (r - r0,) + first.shape, (step,) + first.strides, writeable=False)
                self.runs.append((out, w2[:, i0 * K : i1 * K], slabs))
            r0 = r

    def __call__(self, x4):
        np.copyto(self.wr, self.weight.transpose(0, 2, 1, 3))
        for dst, source in self.copies:
            copy_runs(dst, x4[source])
        for out, w, slabs in self.runs:
            if w is None:
                out[...] = 0
            else:
                np.matmul(w, slabs, out=out)
        self._add_bias()
        return self.out4


class Rows(Strategy):
    """Stride 1: ckw (C*KW, Hp*OW*N) = the input copied once per kernel column; KH products on row-shifted views."""

    kind = ROWS

    def __init__(self, *args):
        super().__init__(*args)
        N, C, H, W, F, KH, KW, OH, OW = self.geometry
        PH, PW = self.padding
        Hp = H + 2 * PH
        self.step, self.M = OW * N, OH * OW * N
        ckw = self.workspace[: C * KW * Hp * OW * N].reshape(C, KW, Hp, OW, N)
        self.copies = []  # ckw[c, j, h, ow] = xpad[c, h, ow + j]
        for j in range(KW):
            inner, source, borders = shifted(ckw[:, j].shape, (C, H, W, N), (-PH, j - PW), (1, 1))
            _zero_borders(ckw[:, j], borders)
            if inner is not None:
                self.copies.append((ckw[:, j][inner], source))
        self.columns = ckw.reshape(C * KW, Hp * OW * N)
        self.tmp = self.workspace[self.columns.size : self.columns.size + F * self.M].reshape(F, self.M)
        self.wk = np.empty((KH, F, C * KW), dtype=self.weight.dtype)  # row i: W_i, kernel row i of every filter
        self.out2 = self.out4.reshape(F, -1)
        # Kernel row i meets the input (not the zero padding) only for output rows oh in [lo, hi): outside
        # them its product is zero, so each product covers just those rows (5x5 pad 2 on 14 rows: 8.6% less)
        self.spans = [(i, lo, hi) for i in range(KH) for lo, hi in [_span(OH, H, i - PH, 1)] if lo < hi]

    def __call__(self, x4):
        np.copyto(self.wk.reshape(self.wk.shape[:2] + (-1, self.weight.shape[3])), self.weight.transpose(2, 0, 1, 3))
        for dst, source in self.copies:
            np.copyto(dst, x4[source])
        step, wk, ckw = self.step, self.wk, self.columns
        terms = [(lo * step, hi * step, wk[i], ckw[:, (i + lo) * step : (i + hi) * step]) for i, lo, hi in self.spans]
        _span_sum(self.out2, terms, self.tmp)
        self._add_bias()
        return self.out4


class SpaceToDepth(Strategy):
    """Stride > 1: S (C*SH*SW, Hs*Ws*N) regroups each SH x SW block into channels; one stacked product, shifted sums."""

    kind = SPACE_TO_DEPTH

    def __init__(self, *args):
        super().__init__(*args)
        N, C, H, W, F, KH, KW, OH, OW = self.geometry
        (SH, SW), (PH, PW) = self.stride, self.padding
        KH2, KW2, Hs, Ws = _s2d_sizes(KH, KW, OH, OW, self.stride)
        L = Hs * Ws * N
        S = self.workspace[: C * SH * SW * L].reshape(C, SH, SW, Hs, Ws, N)
        self.copies = []  # S[c, p, q, h, w] = xpad[c, SH*h + p, SW*w + q]
        self.grid, self.S = None, S  # grid: all of S lies inside x, filled by one copy of x4 split into (h, p), (w, q)
        if (PH, PW) == (0, 0) and SH * Hs <= H and SW * Ws <= W:
            self.grid = (C, Hs, SH, Ws, SW, N)
        else:
            for p in range(SH):
                for q in range(SW):
                    inner, source, borders = shifted(S[:, p, q].shape, (C, H, W, N), (p - PH, q - PW), self.stride)
                    _zero_borders(S[:, p, q], borders)
                    if inner is not None:
                        self.copies.append((S[:, p, q][inner], source))
        self.columns = S.reshape(C * SH * SW, L)
        P = self.workspace[self.columns.size : self.columns.size + KH2 * KW2 * F * L].reshape(KH2 * KW2 * F, L)
        self.P = P
        P6 = P.reshape(KH2, KW2, F, Hs, Ws, N)
        self.shifted = [P6[i, j, :, i : i + OH, j : j + OW] for i in range(KH2) for j in range(KW2)]  # (F, OH, OW, N)
        # Wst[(i, j, f), (c, p, q)] = weight[f, c, SH*i + p, SW*j + q], zero past the kernel
        self.stacked = np.zeros((KH2, KW2, F, C, SH, SW), dtype=self.weight.dtype)
        by_kernel = self.stacked.transpose(2, 3, 0, 4, 1, 5)  # (F, C, KH2, SH, KW2, SW) view
        self.weight_copies = []
        self.kernel_blocks, self.by_kernel = None, by_kernel  # the kernel splits into whole blocks: one copy
        if KH == KH2 * SH and KW == KW2 * SW:
            self.kernel_blocks = (F, C, KH2, SH, KW2, SW)
        else:
            for i in range(KH2):
                for j in range(KW2):
                    ph, qw = min(SH, KH - SH * i), min(SW, KW - SW * j)
                    block = (slice(None), slice(None), slice(SH * i, SH * i + ph), slice(SW * j, SW * j + qw))
                    self.weight_copies.append((by_kernel[:, :, i, :ph, j, :qw], block))
        self.stacked2 = self.stacked.reshape(KH2 * KW2 * F, C * SH * SW)

    def __call__(self, x4):
        if self.kernel_blocks is not None:
            np.copyto(self.by_kernel, self.weight.reshape(self.kernel_blocks))
        for dst, block in self.weight_copies:
            np.copyto(dst, self.weight[block])
        if self.grid is not None:
            _, Hs, SH, Ws, SW, _ = self.grid
            copy_runs(self.S, x4[:, : Hs * SH, : Ws * SW].reshape(self.grid).transpose(0, 2, 4, 1, 3, 5))
        for dst, source in self.copies:
            copy_runs(dst, x4[source])
        np.matmul(self.stacked2, self.columns, out=self.P)
        out4 = self.out4
        np.copyto(out4, self.shifted[0])
        for view in self.shifted[1:]:
            out4 += view
        self._add_bias()
        return out4


STRATEGIES = {IM2COL: Im2col, ROWS: Rows, SPACE_TO_DEPTH: SpaceToDepth, SLABS: Slabs}


def im2col_backward(conv, d, input_grad):
    """d (F, OH*OW*N) -> (dx4 (C, H, W, N) or None, dweight): dweight = d @ cols.T, dx = col2im(W.T @ d)."""
    N, C, H, W, F, KH, KW, OH, OW = conv.geometry
    (PH, PW), (SH, SW) = conv.padding, conv.stride
    dweight = (conv.columns @ d.T).T.reshape(conv.weight.shape)  # = d @ cols.T, ~1.5x faster in OpenBLAS here
    if not input_grad:
        return None, dweight
    np.matmul(conv.weight.reshape(F, -1).T, d, out=conv.columns)  # dcols (C*KH*KW, OH*OW*N) over the columns
    dxp = np.zeros((C, H + 2 * PH, W + 2 * PW, N), dtype=d.dtype)
    for i in range(KH):
        for j in range(KW):  # slice-accumulate each kernel offset's columns, no np.add.at
            dxp[:, i : i + SH * (OH - 1) + 1 : SH, j : j + SW * (OW - 1) + 1 : SW] += conv.cols6[:, i, j]
    return dxp[:, PH : PH + H, PW : PW + W], dweight


def rows_backward(conv, d, input_grad):
    """d (F, OH*OW*N) -> (dx4 (C, H, W, N) or None, dweight (F, C, KH, KW)); dckw is written over ckw."""
    N, C, H, W, F, KH, KW, OH, OW = conv.geometry
    PH, PW = conv.padding
    ckw, step, M = conv.columns, conv.step, conv.M
    dweight = np.zeros((KH, F, C * KW), dtype=d.dtype)  # a kernel row that meets only padding: zero
    for i, lo, hi in conv.spans:  # d @ ckw_i.T over the output rows where kernel row i meets the input, as
        dweight[i] = (ckw[:, (i + lo) * step : (i + hi) * step] @ d[:, lo * step : hi * step].T).T  # the faster order
    dweight = dweight.reshape(KH, F, C, KW).transpose(1, 2, 0, 3)
    if not input_grad:
        return None, dweight
    wk, tmp = conv.wk, conv.workspace[ckw.size : ckw.size + C * KW * M].reshape(C * KW, M)  # wk as forward left it
    # dckw goes over the columns, no longer needed; its rows in the padding are never read
    terms = [((i + lo) * step, (i + hi) * step, wk[i].T, d[:, lo * step : hi * step]) for i, lo, hi in conv.spans]
    _span_sum(ckw, terms, tmp)
    dckw = ckw.reshape(C, KW, H + 2 * PH, OW, N)
    dx4 = np.zeros((C, H, W, N), dtype=d.dtype)
    for j in range(KW):
        inner, source, _ = shifted(dckw[:, j].shape, dx4.shape, (-PH, j - PW), (1, 1))
        if inner is not None:
            dx4[source] += dckw[:, j][inner]
    return dx4, dweight


def s2d_backward(conv, d4, input_grad):
    """d4 (F, OH, OW, N) -> (dx4 (C, H, W, N) or None, dweight (F, C, KH, KW)); dS is written over S."""
    N, C, H, W, F, KH, KW, OH, OW = conv.geometry
    (SH, SW), (PH, PW) = conv.stride, conv.padding
    KH2, KW2, Hs, Ws = _s2d_sizes(KH, KW, OH, OW, conv.stride)
    S, dP = conv.columns, conv.P
    dP[...] = 0
    for view in conv.shifted:
        view[...] = d4  # the adjoint of the shifted sum (each view a different block of dP)
    dstacked = (S @ dP.T).T.reshape(KH2, KW2, F, C, SH, SW)  # = dP @ S.T
    dweight = dstacked.transpose(2, 3, 0, 4, 1, 5).reshape(F, C, KH2 * SH, KW2 * SW)[:, :, :KH, :KW]
    if not input_grad:
        return None, dweight
    dS = np.matmul(conv.stacked2.T, dP, out=S).reshape(C, SH, SW, Hs, Ws, N)
    covered = SH * Hs - PH >= H and SW * Ws - PW >= W  # every input pixel is in exactly one grid cell
    dx4 = (np.empty if covered else np.zeros)((C, H, W, N), dtype=d4.dtype)
    for p in range(SH):
        for q in range(SW):
            inner, source, _ = shifted(dS[:, p, q].shape, dx4.shape, (p - PH, q - PW), conv.stride)
            if inner is not None:
                copy_runs(dx4[source], dS[:, p, q][inner])
    return dx4, dweight
