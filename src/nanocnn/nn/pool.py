"""2-D max pooling: each output is the largest value in its KH x KW window."""

from ..validation import UserError, check_array, check_kernel_fits, check_pair
from .functional import maxpool2d_backward, maxpool2d_forward, output_hw
from .module import Module, short
from .registry import register_layer


@register_layer
class MaxPool2d(Module):
    """out[n, c, oh, ow] = max_{kh, kw} xpad[n, c, oh*SH + kh, ow*SW + kw]

    Shapes: x : (N, C, H, W) -> out : (N, C, OH, OW), OH = (H + 2*PH - KH) // SH + 1.
    stride defaults to kernel_size; padding adds -inf and is at most half the kernel (as in PyTorch).
    The gradient goes to one element per window: the first maximum in row-major order, as in PyTorch,
    so ties never double-count.
    """

    fusion = "max_pool"

    def __init__(self, kernel_size, stride=None, padding=0):
        name = "MaxPool2d"
        self.kernel_size = check_pair(kernel_size, "kernel_size", owner=name)
        self.stride = self.kernel_size if stride is None else check_pair(stride, "stride", owner=name)
        self.padding = check_pair(padding, "padding", 0, owner=name)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise UserError(f"{name}: padding must be at most half the kernel size {self.kernel_size}, got {padding!r}")
        self._cache = None

    def forward(self, x):
        """x : (N, C, H, W) -> (N, C, OH, OW)."""
        check_array(x, "MaxPool2d", 4)
        check_kernel_fits("MaxPool2d", x.shape[2:], self.kernel_size, self.padding)
        out, cache = maxpool2d_forward(x, self.kernel_size, self.stride, self.padding)
        self._cache = cache if self.grad_enabled else None
        return out

    def backward(self, grad_out, input_grad=True):
        """grad_out : (N, C, OH, OW) -> dx : (N, C, H, W), nonzero only at each window's chosen maximum."""
        if self._cache is None:
            raise RuntimeError("MaxPool2d: backward needs a forward pass with gradients enabled first")
        out = self._cache[2]
        if grad_out.shape != out.shape:
            raise UserError(f"MaxPool2d: grad_out shape {grad_out.shape} does not match the output {out.shape}")
        if not input_grad:
            return None
        return maxpool2d_backward(self._cache, grad_out, self.kernel_size, self.stride, self.padding)

    def output_shape(self, input_shape):
        C, H, W = input_shape
        check_kernel_fits("MaxPool2d", (H, W), self.kernel_size, self.padding)
        return (C,) + output_hw((H, W), self.kernel_size, self.stride, self.padding)

    def spec(self):
        return dict(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding)

    def to_onnx(self, graph, x, name):
        # ONNX ignores padded cells when taking the max, which is what the -inf padding here does
        (KH, KW), (SH, SW), (PH, PW) = self.kernel_size, self.stride, self.padding
        return graph.node("MaxPool", [x], name, kernel_shape=[KH, KW], strides=[SH, SW], pads=[PH, PW, PH, PW])

    def to_torch(self):
        return "MaxPool2d", {k: list(v) for k, v in self.spec().items()}

    def extra_repr(self):
        text = f"kernel_size={short(self.kernel_size)}"
        text += f", stride={short(self.stride)}" if self.stride != self.kernel_size else ""
        return text + (f", padding={short(self.padding)}" if self.padding != (0, 0) else "")
