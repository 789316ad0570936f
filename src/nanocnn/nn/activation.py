"""ReLU, the activation the article describes (and its code never applies)."""

from ..validation import check_array
from .functional import relu_backward, relu_forward
from .module import Module
from .registry import register_layer


@register_layer
class ReLU(Module):
    """out = max(x, 0) elementwise; the gradient passes where x > 0 (0 at x == 0, as in PyTorch).

    Shapes: x : any shape -> out : the same shape.
    """

    fusion = "relu"

    def __init__(self):
        self._mask = None

    def forward(self, x):
        check_array(x, "ReLU")
        out = relu_forward(x)
        self._mask = (out > 0) if self.grad_enabled else None
        return out

    def backward(self, grad_out, input_grad=True):
        if self._mask is None:
            raise RuntimeError("ReLU: backward needs a forward pass with gradients enabled first")
        return relu_backward(grad_out, self._mask) if input_grad else None

    def explain(self, x, position):
        """out = max(0, v) for the input v at ``position``."""
        v = float(x[position])
        return dict(input=v, total=max(v, 0.0))

    def explain_backward(self, x, grad_out, position):
        """dx = grad_out where the input was positive, else 0."""
        v, g = float(x[position]), float(grad_out[position])
        return dict(input=v, grad=g, total=g if v > 0 else 0.0)

    def to_onnx(self, graph, x, name):
        return graph.node("Relu", [x], name)

    def to_torch(self):
        return "ReLU", {}
