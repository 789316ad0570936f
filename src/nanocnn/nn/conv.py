"""2-D convolution (cross-correlation, as in PyTorch): check the input, compute, keep what backward needs."""

import numpy as np

from ..backend.conv import workspace_size
from ..validation import UserError, check_array, check_float_dtype, check_int, check_kernel_fits, check_pair
from .functional import conv2d_backward, conv2d_forward, covering, output_hw, window_at
from .init import he_normal
from .module import Module, Parameter, short
from .registry import register_layer


@register_layer
class Conv2d(Module):
    """out[n, f, oh, ow] = bias[f] + sum_{c, kh, kw} weight[f, c, kh, kw] * xpad[n, c, oh*SH + kh, ow*SW + kw]

    Shapes:
        x : (N, C_in, H, W)  ->  out : (N, C_out, OH, OW),  OH = (H + 2*PH - KH) // SH + 1
        weight : (C_out, C_in, KH, KW),  bias : (C_out,)
    kernel_size, stride and padding are an int or an (h, w) pair; padding adds zeros. Weights start
    He-normal from ``rng`` (a np.random.Generator). In training the backend's copies of the input live in a
    workspace the layer keeps and reuses (backward writes their gradient over them), so a step allocates no
    new large arrays; one backward per training forward.
    """

    fusion = "conv"

    def __init__(
        self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, dtype=np.float32, rng=None
    ):
        name = "Conv2d"
        self.in_channels = check_int(in_channels, "in_channels", 1, owner=name)
        self.out_channels = check_int(out_channels, "out_channels", 1, owner=name)
        self.kernel_size = check_pair(kernel_size, "kernel_size", owner=name)
        self.stride = check_pair(stride, "stride", owner=name)
        self.padding = check_pair(padding, "padding", 0, owner=name)
        dtype = check_float_dtype(dtype, name)
        shape = (self.out_channels, self.in_channels) + self.kernel_size
        self.weight = Parameter(
            he_normal(shape, self.in_channels * self.kernel_size[0] * self.kernel_size[1], rng, dtype)
        )
        self.bias = Parameter(np.zeros(self.out_channels, dtype=dtype)) if bias else None
        self._cache = None
        self._workspace = None  # 1-D, grown as needed; training only

    def forward(self, x):
        """x : (N, C_in, H, W) -> (N, C_out, OH, OW)."""
        check_array(x, "Conv2d", 4, self.in_channels, self.weight.data.dtype)
        check_kernel_fits("Conv2d", x.shape[2:], self.kernel_size, self.padding)
        workspace = None
        if self.grad_enabled:
            size = workspace_size(x.shape, self.weight.data.shape, self.stride, self.padding)
            if self._workspace is None or self._workspace.size < size or self._workspace.dtype != x.dtype:
                self._workspace = np.empty(size, dtype=x.dtype)
            workspace = self._workspace
        bias = None if self.bias is None else self.bias.data
        out, cache = conv2d_forward(x, self.weight.data, bias, self.stride, self.padding, workspace, self.grad_enabled)
        self._cache = cache if self.grad_enabled else None
        return out

    def backward(self, grad_out, input_grad=True):
        """grad_out : (N, C_out, OH, OW) -> dx : (N, C_in, H, W); adds dW and db into the parameters.

        The cache is used up: the column gradient is written over the columns.
        """
        if self._cache is None:
            raise RuntimeError("Conv2d: backward needs a forward pass with gradients enabled first")
        cache, x_shape = self._cache, self._cache.x_shape
        if grad_out.shape != (x_shape[0], self.out_channels) + output_hw(
            x_shape[2:], self.kernel_size, self.stride, self.padding
        ):
            raise UserError(f"Conv2d: grad_out shape {grad_out.shape} does not match the forward output")
        self._cache = None
        dx, dW, db = conv2d_backward(cache, grad_out, input_grad)
        self.weight.grad += dW
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def explain(self, x, position):
        """How out[f, oh, ow] comes from one example's input x (C_in, H, W): the window it sees (C_in, KH, KW),
        zero where it hangs over into the padding, whose first row and column in x are (top, left); the kernel
        weight[f]; each input channel's sum of weight * input (C_in,); and the bias. Their total is the output."""
        f, oh, ow = position
        top, left = oh * self.stride[0] - self.padding[0], ow * self.stride[1] - self.padding[1]
        window = window_at(x, top, left, self.kernel_size)
        weight = self.weight.data[f].astype(np.float64)
        sums = (window * weight).sum(axis=(1, 2))
        bias = 0.0 if self.bias is None else float(self.bias.data[f])
        return dict(window=window, weight=weight, sums=sums, bias=bias, top=top, left=left, total=sums.sum() + bias)

    def explain_backward(self, x, grad_out, position):
        """How dx[c, i, j] comes from grad_out (C_out, OH, OW) of one example: every output (f, oh, ow) whose window
        covered input pixel (i, j) hands back grad_out[f, oh, ow] times the weight that met it,
        weight[f, c, i + PH - oh*SH, j + PW - ow*SW] (docs/math.md). Returns the outputs (oh, ow), the weights
        and the products (C_out, len(oh), len(ow)), and their total."""
        c, i, j = position
        oh, kh = covering(i, grad_out.shape[1], self.kernel_size[0], self.stride[0], self.padding[0])
        ow, kw = covering(j, grad_out.shape[2], self.kernel_size[1], self.stride[1], self.padding[1])
        grads = grad_out[:, oh][:, :, ow].astype(np.float64)  # (C_out, len(oh), len(ow))
        weights = self.weight.data[:, c][:, kh][:, :, kw].astype(np.float64)
        products = grads * weights
        return dict(rows=oh, cols=ow, grads=grads, weights=weights, products=products, total=products.sum())

    def output_shape(self, input_shape):
        C, H, W = input_shape
        if C != self.in_channels:
            raise UserError(f"Conv2d: input must have {self.in_channels} channels, got shape {tuple(input_shape)}")
        check_kernel_fits("Conv2d", (H, W), self.kernel_size, self.padding)
        return (self.out_channels,) + output_hw((H, W), self.kernel_size, self.stride, self.padding)

    def macs(self, input_shape):
        _, OH, OW = self.output_shape(input_shape)
        return self.weight.data.size * OH * OW

    def scratch_size(self, input_shape):
        self.output_shape(input_shape)  # checks the shape
        shape = (1,) + tuple(input_shape)
        return workspace_size(shape, self.weight.data.shape, self.stride, self.padding, backward=False)

    def spec(self):
        return dict(
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            bias=self.bias is not None,
            dtype=self.weight.data.dtype.name,
        )

    def to_onnx(self, graph, x, name):
        inputs = [x, graph.weight(f"{name}.weight", self.weight.data)]  # weight: (F, C, KH, KW)
        if self.bias is not None:
            inputs.append(graph.weight(f"{name}.bias", self.bias.data))  # bias: (F,)
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        return graph.node("Conv", inputs, name, kernel_shape=[KH, KW], strides=[SH, SW], pads=[PH, PW, PH, PW])

    def to_torch(self):
        kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in self.spec().items() if k != "dtype"}
        return "Conv2d", kwargs  # torch.nn.Conv2d's arguments: the same names and meanings

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={short(self.kernel_size)}"
        text += f", stride={short(self.stride)}" if self.stride != (1, 1) else ""
        text += f", padding={short(self.padding)}" if self.padding != (0, 0) else ""
        return text + (", bias=False" if self.bias is None else "")
