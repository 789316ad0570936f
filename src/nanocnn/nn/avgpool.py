"""Average pooling: each output is the mean of its KH x KW window; global average pooling: the mean of each map."""

import numpy as np

from ..validation import UserError, check_array, check_kernel_fits, check_pair
from .functional import (
    avgpool2d_backward,
    avgpool2d_forward,
    covering,
    global_avgpool_backward,
    global_avgpool_forward,
    output_hw,
    window_at,
)
from .module import Module, short
from .registry import register_layer


@register_layer
class AvgPool2d(Module):
    """out[n, c, oh, ow] = (1 / (KH*KW)) * sum_{kh, kw} xpad[n, c, oh*SH + kh, ow*SW + kw]

    Shapes: x : (N, C, H, W) -> out : (N, C, OH, OW), OH = (H + 2*PH - KH) // SH + 1. stride defaults to
    kernel_size; padding adds zeros, counted in the mean (PyTorch's count_include_pad=True), and is at most
    half the kernel. Every cell of a window gets an equal share of the window's gradient.
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        name = "AvgPool2d"
        self.kernel_size = check_pair(kernel_size, "kernel_size", owner=name)
        self.stride = self.kernel_size if stride is None else check_pair(stride, "stride", owner=name)
        self.padding = check_pair(padding, "padding", 0, owner=name)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise UserError(f"{name}: padding must be at most half the kernel size {self.kernel_size}, got {padding!r}")
        self._shape = None

    def forward(self, x):
        """x : (N, C, H, W) -> (N, C, OH, OW)."""
        check_array(x, "AvgPool2d", 4)
        check_kernel_fits("AvgPool2d", x.shape[2:], self.kernel_size, self.padding)
        self._shape = x.shape if self.grad_enabled else None
        return avgpool2d_forward(x, self.kernel_size, self.stride, self.padding)

    def backward(self, grad_out, input_grad=True):
        """grad_out : (N, C, OH, OW) -> dx : (N, C, H, W)."""
        if self._shape is None:
            raise RuntimeError("AvgPool2d: backward needs a forward pass with gradients enabled first")
        shape, self._shape = self._shape, None
        return avgpool2d_backward(grad_out, shape, self.kernel_size, self.stride, self.padding) if input_grad else None

    def output_shape(self, input_shape):
        C, H, W = input_shape
        check_kernel_fits("AvgPool2d", (H, W), self.kernel_size, self.padding)
        return (C,) + output_hw((H, W), self.kernel_size, self.stride, self.padding)

    def macs(self, input_shape):
        _, OH, OW = self.output_shape(input_shape)
        return input_shape[0] * OH * OW * self.kernel_size[0] * self.kernel_size[1]

    def explain(self, x, position):
        """How out[c, oh, ow] comes from one example's input: its window (zeros in the padding), summed, divided
        by the window's size."""
        c, oh, ow = position
        top, left = oh * self.stride[0] - self.padding[0], ow * self.stride[1] - self.padding[1]
        window = window_at(x[c : c + 1], top, left, self.kernel_size)[0]
        return dict(window=window, top=top, left=left, total=window.sum() / window.size)

    def explain_backward(self, x, grad_out, position):
        """dx[c, i, j] = the sum, over the windows that cover (i, j), of their gradient / (KH*KW)."""
        c, i, j = position
        oh, _ = covering(i, grad_out.shape[1], self.kernel_size[0], self.stride[0], self.padding[0])
        ow, _ = covering(j, grad_out.shape[2], self.kernel_size[1], self.stride[1], self.padding[1])
        grads = grad_out[c][oh][:, ow].astype(np.float64)
        return dict(rows=oh, cols=ow, grads=grads, total=grads.sum() / (self.kernel_size[0] * self.kernel_size[1]))

    def spec(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding)

    def to_onnx(self, graph, x, name):
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        attributes = dict(kernel_shape=[KH, KW], strides=[SH, SW], pads=[PH, PW, PH, PW], count_include_pad=1)
        return graph.node("AveragePool", [x], name, **attributes)

    def to_torch(self):
        return "AvgPool2d", {k: list(v) for k, v in self.spec().items()}

    def extra_repr(self):
        text = f"kernel_size={short(self.kernel_size)}"
        text += f", stride={short(self.stride)}" if self.stride != self.kernel_size else ""
        return text + (f", padding={short(self.padding)}" if self.padding != (0, 0) else "")


@register_layer
class AdaptiveAvgPool2d(Module):
    """Global average pooling: out[n, c, 0, 0] = the mean of x[n, c] over all (h, w).

    Shapes: x : (N, C, H, W) -> out : (N, C, 1, 1). Only output_size 1 (PyTorch's most common use) is built.
    """

    def __init__(self, output_size=1):
        if output_size not in (1, (1, 1), [1, 1]):
            raise UserError(f"AdaptiveAvgPool2d: only output_size 1 (global average pooling), got {output_size!r}")
        self.output_size = 1
        self._shape = None

    def forward(self, x):
        check_array(x, "AdaptiveAvgPool2d", 4)
        self._shape = x.shape if self.grad_enabled else None
        return global_avgpool_forward(x)

    def backward(self, grad_out, input_grad=True):
        if self._shape is None:
            raise RuntimeError("AdaptiveAvgPool2d: backward needs a forward pass with gradients enabled first")
        shape, self._shape = self._shape, None
        return global_avgpool_backward(grad_out, shape) if input_grad else None

    def output_shape(self, input_shape):
        return (input_shape[0], 1, 1)

    def macs(self, input_shape):
        return int(np.prod(input_shape))

    def explain(self, x, position):
        """out[c, 0, 0] = the mean of map c."""
        values = x[position[0]].astype(np.float64)
        return dict(count=values.size, sum=values.sum(), total=values.mean())

    def explain_backward(self, x, grad_out, position):
        """dx[c, h, w] = dout[c, 0, 0] / (H*W): every cell had the same share of the mean."""
        c = position[0]
        g = float(grad_out[c, 0, 0])
        return dict(grad=g, count=x[c].size, total=g / x[c].size)

    def spec(self):
        return dict(output_size=1)

    def to_onnx(self, graph, x, name):
        return graph.node("GlobalAveragePool", [x], name)

    def to_torch(self):
        return "AdaptiveAvgPool2d", {"output_size": 1}
