"""Kernel rows, for stride 1: the input copied only KW times, then KH products that read the copy in place."""

import numpy as np

from .common import Strategy, shifted, span, span_sum, zero_borders


class Rows(Strategy):
    """ckw[c, j, h, ow, n] = xpad[c, h, ow + j, n], viewed as (C*KW, Hp*OW*N). Kernel row i needs rows
    h = oh + i, the contiguous column range [i*OW*N, i*OW*N + OH*OW*N), so out = sum_i W_i @ ckw[:, ...]
    with W_i = weight[:, :, i, :] as (F, C*KW): KH*OH/Hp times less copying than im2col.
    """

    kind = "kernel rows"

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
            zero_borders(ckw[:, j], borders)
            if inner is not None:
                self.copies.append((ckw[:, j][inner], source))
        self.columns = ckw.reshape(C * KW, Hp * OW * N)
        self.tmp = self.workspace[self.columns.size : self.columns.size + F * self.M].reshape(F, self.M)
        self.wk = np.empty((KH, F, C * KW), dtype=self.weight.dtype)  # row i: W_i, kernel row i of every filter
        self.out2 = self.out4.reshape(F, -1)
        # Kernel row i meets the input (not the zero padding) only for output rows oh in [lo, hi): outside
        # them its product is zero, so each product covers just those rows
        self.spans = [(i, lo, hi) for i in range(KH) for lo, hi in [span(OH, H, i - PH, 1)] if lo < hi]

    def __call__(self, x4):
        np.copyto(self.wk.reshape(self.wk.shape[:2] + (-1, self.weight.shape[3])), self.weight.transpose(2, 0, 1, 3))
        for dst, source in self.copies:
            np.copyto(dst, x4[source])
        step, wk, ckw = self.step, self.wk, self.columns
        terms = [(lo * step, hi * step, wk[i], ckw[:, (i + lo) * step : (i + hi) * step]) for i, lo, hi in self.spans]
        span_sum(self.out2, terms, self.tmp)
        self._add_bias()
        return self.out4

    def _backward(self, d, input_grad):
        """dweight_i = d @ ckw_i.T per kernel row; dckw = sum_i W_i.T @ d, written over ckw, then added back."""
        N, C, H, W, F, KH, KW, OH, OW = self.geometry
        PH, PW = self.padding
        ckw, step, M = self.columns, self.step, self.M
        dweight = np.zeros((KH, F, C * KW), dtype=d.dtype)  # a kernel row that meets only padding: zero
        for i, lo, hi in self.spans:  # over the output rows where kernel row i meets the input, the faster order
            dweight[i] = (ckw[:, (i + lo) * step : (i + hi) * step] @ d[:, lo * step : hi * step].T).T
        dweight = dweight.reshape(KH, F, C, KW).transpose(1, 2, 0, 3)
        if not input_grad:
            return None, dweight
        wk, tmp = self.wk, self.workspace[ckw.size : ckw.size + C * KW * M].reshape(C * KW, M)  # wk as forward left it
        # dckw goes over the columns, no longer needed; its rows in the padding are never read
        terms = [((i + lo) * step, (i + hi) * step, wk[i].T, d[:, lo * step : hi * step]) for i, lo, hi in self.spans]
        span_sum(ckw, terms, tmp)
        dckw = ckw.reshape(C, KW, H + 2 * PH, OW, N)
        dx4 = np.zeros((C, H, W, N), dtype=d.dtype)
        for j in range(KW):
            inner, source, _ = shifted(dckw[:, j].shape, dx4.shape, (-PH, j - PW), (1, 1))
            if inner is not None:
                dx4[source] += dckw[:, j][inner]
        return dx4, dweight
