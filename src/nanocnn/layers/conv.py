"""2-D convolution (cross-correlation, as in PyTorch) as im2col + one matrix product."""
import numpy as np

from ..functional import check_input, col2im, from_chwn, im2col, output_hw, pair, positive_int
from ..init import init_weight
from .module import Module, Parameter, check_float_dtype, short


class Conv2d(Module):
    """out[n, f, oh, ow] = bias[f] + sum_{c, kh, kw} weight[f, c, kh, kw] * xpad[n, c, oh*SH + kh, ow*SW + kw]

    Shapes:
        x : (N, C_in, H, W)  ->  out : (N, C_out, OH, OW),  OH = (H + 2*PH - KH) // SH + 1
        weight : (C_out, C_in, KH, KW),  bias : (C_out,)
    kernel_size, stride and padding are an int or an (h, w) pair; padding adds zeros.
    The output is an (N, C_out, OH, OW) view of a (C_out, OH, OW, N) array: no transpose copy.
    The column matrix lives in a workspace the layer keeps and reuses from call to call (the backward
    pass writes its column gradient over it), so a step allocates no new large arrays; one backward
    per training forward.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 dtype=np.float32, init="he", rng=None):
        name = "Conv2d"
        self.in_channels = positive_int(in_channels, "in_channels", name)
        self.out_channels = positive_int(out_channels, "out_channels", name)
        self.kernel_size = pair(kernel_size, "kernel_size", name)
        self.stride = pair(stride, "stride", name)
        self.padding = pair(padding, "padding", name, minimum=0)
        dtype = check_float_dtype(dtype, name)
        KH, KW = self.kernel_size
        fan_in = self.in_channels * KH * KW
        shape = (self.out_channels, self.in_channels, KH, KW)
        self.weight = Parameter(init_weight(init, shape, fan_in, rng, dtype, name))
        self.bias = Parameter(np.zeros(self.out_channels, dtype=dtype)) if bias else None
        self._cache = None
        self._workspace = None                                          # 1-D, grown as needed

    def workspace(self, size, dtype):
        """A 1-D array of ``size`` elements from the layer's reusable workspace (contents undefined)."""
        if self._workspace is None or self._workspace.size < size or self._workspace.dtype != dtype:
            self._workspace = np.empty(size, dtype=dtype)
        return self._workspace[:size]

    def forward(self, x):
        """x : (N, C_in, H, W) -> (N, C_out, OH, OW)."""
        check_input(x, "Conv2d", self.in_channels, self.weight.data.dtype)
        N, _, H, W = x.shape
        OH, OW = output_hw("Conv2d", (H, W), self.kernel_size, self.stride, self.padding)
        KH, KW = self.kernel_size
        space = self.workspace(self.in_channels * KH * KW * OH * OW * N, x.dtype)
        cols = im2col(x, self.kernel_size, self.stride, self.padding, out=space)   # (C*KH*KW, OH*OW*N)
        out = self.weight.data.reshape(self.out_channels, -1) @ cols    # (F, OH*OW*N)
        if self.bias is not None:
            out += self.bias.data[:, None]
        self._cache = (x.shape, cols) if self.training else None
        return from_chwn(out.reshape(self.out_channels, OH, OW, N))      # (N, F, OH, OW) view

    def backward(self, grad_out, input_grad=True):
        """grad_out : (N, C_out, OH, OW) -> dx : (N, C_in, H, W); adds dW and db into the parameters.

        dW = dout @ cols.T, db = dout summed over (n, oh, ow), dx = col2im(W.T @ dout).
        With input_grad=False (the first layer of a network) dx is not computed and None is returned.
        W.T @ dout is written over the columns, which dW no longer needs: the cache is used up.
        """
        if self._cache is None:
            raise RuntimeError("Conv2d: backward needs a forward pass in training mode first")
        x_shape, cols = self._cache
        self._cache = None
        F = self.out_channels
        dout = grad_out.transpose(1, 2, 3, 0).reshape(F, -1)            # (F, OH*OW*N), a copy only if
                                                                        # grad_out is not (F, OH, OW, N) memory
        if dout.shape[1] != cols.shape[1]:
            raise ValueError(f"Conv2d: grad_out shape {grad_out.shape} does not match the forward output")
        # dW = dout @ cols.T, computed as (cols @ dout.T).T: the same numbers, ~1.5x faster in OpenBLAS here
        self.weight.grad += (cols @ dout.T).T.reshape(self.weight.grad.shape)
        if self.bias is not None:
            self.bias.grad += dout.sum(axis=1)
        if not input_grad:
            return None
        dcols = np.matmul(self.weight.data.reshape(F, -1).T, dout, out=cols)   # (C*KH*KW, OH*OW*N)
        return col2im(dcols, x_shape, self.kernel_size, self.stride, self.padding)

    def output_shape(self, input_shape):
        C, H, W = input_shape
        if C != self.in_channels:
            raise ValueError(f"Conv2d: input must have {self.in_channels} channels, got shape {tuple(input_shape)}")
        return (self.out_channels,) + output_hw("Conv2d", (H, W), self.kernel_size, self.stride, self.padding)

    def macs(self, input_shape):
        _, OH, OW = self.output_shape(input_shape)
        KH, KW = self.kernel_size
        return self.out_channels * self.in_channels * KH * KW * OH * OW

    def spec(self):
        return dict(in_channels=self.in_channels, out_channels=self.out_channels, kernel_size=self.kernel_size,
                    stride=self.stride, padding=self.padding, bias=self.bias is not None,
                    dtype=self.weight.data.dtype.name)

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={short(self.kernel_size)}"
        text += f", stride={short(self.stride)}" if self.stride != (1, 1) else ""
        text += f", padding={short(self.padding)}" if self.padding != (0, 0) else ""
        return text + (", bias=False" if self.bias is None else "")
