"""Slabs, forward only (inference): every output row's im2col matrix is one contiguous slab of a KW-fold copy."""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .common import Strategy, copy_runs, shifted, zero_borders


class Slabs(Strategy):
    """ckw[h, c, j, ow, n] = xpad[c, h, SW*ow + j, n] for the H rows of the image (the vertical padding is
    never stored). Output row r meets image rows SH*r + i - PH for kernel rows i in [i0, i1), and with h
    outermost its columns, rows (i, c, j), are ckw[SH*r + i0 - PH : SH*r + i1 - PH] read as one
    ((i1 - i0)*C*KW, OW*N) matrix in place: out[:, r] = W[:, (i0..i1, c, j)] @ slab, one product per output
    row (the rows with the same [i0, i1) as one batched call), KH*OH/H times less copying than im2col, and
    no products with rows of padding. Nothing is kept for a backward pass.
    """

    kind = "slabs"

    def __init__(self, *args):
        super().__init__(*args)
        N, C, H, W, F, KH, KW, OH, OW = self.geometry
        (SH, SW), (PH, PW) = self.stride, self.padding
        ckw = self.workspace[: H * C * KW * OW * N].reshape(H, C, KW, OW, N)
        self.copies = []  # ckw[h, c, j, ow] = x[c, h, SW*ow + j - PW]
        for j in range(KW):
            dst = ckw[:, :, j].transpose(1, 0, 2, 3)  # (C, H, OW, N) view
            inner, source, borders = shifted(dst.shape, (C, H, W, N), (0, j - PW), (1, SW))
            zero_borders(dst, borders)
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

    def backward(self, dout, input_grad=True):
        raise ValueError("conv2d_backward: the forward ran without backward (slabs keep no columns)")
