"""Space to depth, for strides above 1: each SH x SW block of the input becomes SH*SW channels, then one
stacked product and a sum of shifted views (no im2col)."""

import math

import numpy as np

from .common import Strategy, copy_runs, shifted, zero_borders


def sizes(KH, KW, OH, OW, stride):
    """Space-to-depth kernel size (KH2, KW2) and grid size (Hs, Ws): the grid cells the outputs read."""
    KH2, KW2 = math.ceil(KH / stride[0]), math.ceil(KW / stride[1])
    return KH2, KW2, OH + KH2 - 1, OW + KW2 - 1


class SpaceToDepth(Strategy):
    """S[c, p, q, h, w, n] = xpad[c, SH*h + p, SW*w + q, n], viewed as (C*SH*SW, Hs*Ws*N). The kernel becomes
    a KH2 x KW2 stride-1 kernel on S (KH2 = ceil(KH / SH)), all KH2*KW2 offsets stacked into one
    (KH2*KW2*F, C*SH*SW) matrix Wst: one product P = Wst @ S, then out = sum_{i,j} P[i, j][:, i:i+OH, j:j+OW].
    """

    kind = "space to depth"

    def __init__(self, *args):
        super().__init__(*args)
        N, C, H, W, F, KH, KW, OH, OW = self.geometry
        (SH, SW), (PH, PW) = self.stride, self.padding
        KH2, KW2, Hs, Ws = sizes(KH, KW, OH, OW, self.stride)
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
                    zero_borders(S[:, p, q], borders)
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

    def _backward(self, d, input_grad):
        """dP = the adjoint of the shifted sum; dWst = dP @ S.T; dS = Wst.T @ dP, written over S, then regrouped."""
        N, C, H, W, F, KH, KW, OH, OW = self.geometry
        (SH, SW), (PH, PW) = self.stride, self.padding
        KH2, KW2, Hs, Ws = sizes(KH, KW, OH, OW, self.stride)
        d4 = d.reshape(F, OH, OW, N)
        S, dP = self.columns, self.P
        dP[...] = 0
        for view in self.shifted:
            view[...] = d4  # each view a different block of dP
        dstacked = (S @ dP.T).T.reshape(KH2, KW2, F, C, SH, SW)  # = dP @ S.T
        dweight = dstacked.transpose(2, 3, 0, 4, 1, 5).reshape(F, C, KH2 * SH, KW2 * SW)[:, :, :KH, :KW]
        if not input_grad:
            return None, dweight
        dS = np.matmul(self.stacked2.T, dP, out=S).reshape(C, SH, SW, Hs, Ws, N)
        covered = SH * Hs - PH >= H and SW * Ws - PW >= W  # every input pixel is in exactly one grid cell
        dx4 = (np.empty if covered else np.zeros)((C, H, W, N), dtype=d.dtype)
        for p in range(SH):
            for q in range(SW):
                inner, source, _ = shifted(dS[:, p, q].shape, dx4.shape, (p - PH, q - PW), self.stride)
                if inner is not None:
                    copy_runs(dx4[source], dS[:, p, q][inner])
        return dx4, dweight
