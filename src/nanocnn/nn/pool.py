"""2-D max pooling: each output is the largest value in its KH x KW window."""

import numpy as np

from ..validation import UserError, check_array, check_kernel_fits, check_pair
from .functional import covering, maxpool2d_backward, maxpool2d_forward, output_hw, window_at
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

    def explain(self, x, position):
        """How out[c, oh, ow] comes from one example's input x (C, H, W): the window (KH, KW), -inf in the padding,
        whose first row and column in x are (top, left), and the first maximum in row-major order, the one the
        gradient goes to: winner = (row, column) in the window."""
        c, oh, ow = position
        top, left = oh * self.stride[0] - self.padding[0], ow * self.stride[1] - self.padding[1]
        window = window_at(x[c : c + 1], top, left, self.kernel_size, -np.inf)[0]
        winner = np.unravel_index(int(np.argmax(window)), window.shape)
        return dict(window=window, top=top, left=left, winner=tuple(int(v) for v in winner), total=window[winner])

    def explain_backward(self, x, grad_out, position):
        """How dx[c, i, j] comes from grad_out (C, OH, OW): the sum of grad_out over the windows that covered
        input pixel (i, j) and chose it as their first maximum. Returns every covering window (oh, ow), whether
        it chose (i, j), its grad_out, and the total."""
        c, i, j = position
        oh, _ = covering(i, grad_out.shape[1], self.kernel_size[0], self.stride[0], self.padding[0])
        ow, _ = covering(j, grad_out.shape[2], self.kernel_size[1], self.stride[1], self.padding[1])
        windows = [(int(a), int(b)) for a in oh for b in ow]
        chose = []
        for a, b in windows:
            found = self.explain(x, (c, a, b))
            chose.append((found["top"] + found["winner"][0], found["left"] + found["winner"][1]) == (i, j))
        grads = np.array([float(grad_out[c, a, b]) for a, b in windows])
        return dict(windows=windows, chose=chose, grads=grads, total=float(grads[np.array(chose, bool)].sum()))

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
