"""im2col: every receptive field copied into one (C*KH*KW, OH*OW*N) column matrix, then one product."""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .common import Strategy, zero_borders


class Im2col(Strategy):
    """cols[(c, kh, kw), (oh, ow, n)] = xpad[c, oh*SH + kh, ow*SW + kw, n]; out = weight (F, C*KH*KW) @ cols.

    The workspace holds cols, then the zero-padded input; the windows are a strided view of the padded
    input, so filling cols is one copy.
    """

    kind = "im2col"

    def __init__(self, *args):
        super().__init__(*args)
        N, C, H, W, F, KH, KW, OH, OW = self.geometry
        (PH, PW), (SH, SW) = self.padding, self.stride
        size = C * KH * KW * OH * OW * N
        self.cols6 = self.workspace[:size].reshape(C, KH, KW, OH, OW, N)
        self.columns = self.cols6.reshape(C * KH * KW, OH * OW * N)
        xp = self.workspace[size : size + C * (H + 2 * PH) * (W + 2 * PW) * N].reshape(C, H + 2 * PH, W + 2 * PW, N)
        zero_borders(xp, [(slice(None), slice(0, PH)), (slice(None), slice(PH + H, None))])
        zero_borders(xp, [(slice(None), slice(None), slice(0, PW)), (slice(None), slice(None), slice(PW + W, None))])
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

    def _backward(self, d, input_grad):
        """dweight = d @ cols.T; dx = col2im(W.T @ d), the column gradient written over the columns."""
        N, C, H, W, F, KH, KW, OH, OW = self.geometry
        (PH, PW), (SH, SW) = self.padding, self.stride
        dweight = (self.columns @ d.T).T.reshape(self.weight.shape)  # = d @ cols.T, the faster order in OpenBLAS
        if not input_grad:
            return None, dweight
        np.matmul(self.weight.reshape(F, -1).T, d, out=self.columns)  # dcols (C*KH*KW, OH*OW*N)
        dxp = np.zeros((C, H + 2 * PH, W + 2 * PW, N), dtype=d.dtype)
        for i in range(KH):
            for j in range(KW):  # slice-accumulate each kernel offset's columns, no np.add.at
                dxp[:, i : i + SH * (OH - 1) + 1 : SH, j : j + SW * (OW - 1) + 1 : SW] += self.cols6[:, i, j]
        return dxp[:, PH : PH + H, PW : PW + W], dweight
