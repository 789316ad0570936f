"""Fully connected layer, and Flatten, which joins a conv stack to it."""

import math

import numpy as np

from ..validation import UserError, check_array, check_float_dtype, check_int
from .functional import linear_backward, linear_forward
from .init import he_normal
from .module import Module, Parameter
from .registry import register_layer


@register_layer
class Linear(Module):
    """out = x @ weight.T + bias.

    Shapes: x : (N, in_features) -> out : (N, out_features);
    weight : (out_features, in_features), bias : (out_features,) (PyTorch's layout).
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, rng=None):
        name = "Linear"
        self.in_features = check_int(in_features, "in_features", 1, owner=name)
        self.out_features = check_int(out_features, "out_features", 1, owner=name)
        dtype = check_float_dtype(dtype, name)
        self.weight = Parameter(he_normal((self.out_features, self.in_features), self.in_features, rng, dtype))
        self.bias = Parameter(np.zeros(self.out_features, dtype=dtype)) if bias else None
        self._x = None

    def forward(self, x):
        """x : (N, in_features) -> (N, out_features)."""
        if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != self.in_features:
            got = x.shape if isinstance(x, np.ndarray) else type(x).__name__
            raise UserError(f"Linear: input must have shape (N, {self.in_features}), got {got}")
        check_array(x, "Linear", dtype=self.weight.data.dtype)
        self._x = x if self.grad_enabled else None
        return linear_forward(x, self.weight.data, None if self.bias is None else self.bias.data)

    def backward(self, grad_out, input_grad=True):
        """grad_out : (N, out_features) -> dx : (N, in_features); dW += grad_out.T @ x, db += sum over N."""
        if self._x is None:
            raise RuntimeError("Linear: backward needs a forward pass with gradients enabled first")
        if grad_out.shape != (self._x.shape[0], self.out_features):
            raise UserError(f"Linear: grad_out shape {grad_out.shape} does not match the output")
        dx, dW, db = linear_backward(self._x, self.weight.data, grad_out, input_grad)
        self.weight.grad += dW
        if self.bias is not None:
            self.bias.grad += db
        return dx

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_features,):
            raise UserError(f"Linear: input must have {self.in_features} features, got shape {tuple(input_shape)}")
        return (self.out_features,)

    def macs(self, input_shape):
        return self.in_features * self.out_features

    def spec(self):
        return dict(
            in_features=self.in_features,
            out_features=self.out_features,
            bias=self.bias is not None,
            dtype=self.weight.data.dtype.name,
        )

    def explain(self, x, position):
        """How out[k] comes from one example's input x (in_features,): each input times its weight,
        products = weight[k] * x, summed, plus bias[k]."""
        (k,) = position
        products = self.weight.data[k].astype(np.float64) * x
        bias = 0.0 if self.bias is None else float(self.bias.data[k])
        return dict(
            inputs=x.astype(np.float64),
            weights=self.weight.data[k].astype(np.float64),
            products=products,
            bias=bias,
            total=products.sum() + bias,
        )

    def explain_backward(self, x, grad_out, position):
        """How dx[j] comes from grad_out (out_features,): every output k hands back grad_out[k] * weight[k, j]."""
        (j,) = position
        weights = self.weight.data[:, j].astype(np.float64)
        products = grad_out.astype(np.float64) * weights
        return dict(grads=grad_out.astype(np.float64), weights=weights, products=products, total=products.sum())

    def to_onnx(self, graph, x, name):
        inputs = [x, graph.weight(f"{name}.weight", self.weight.data)]  # weight: (out, in), hence transB
        if self.bias is not None:
            inputs.append(graph.weight(f"{name}.bias", self.bias.data))
        return graph.node("Gemm", inputs, name, transB=1)  # (N, in) -> (N, out)

    def to_torch(self):
        return "Linear", {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias is not None,
        }

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}" + (", bias=False" if self.bias is None else "")


@register_layer
class Flatten(Module):
    """Join all axes after the first: x : (N, C, H, W) -> (N, C*H*W), in (c, h, w) order as in PyTorch."""

    def __init__(self):
        self._shape = None

    def forward(self, x):
        if not isinstance(x, np.ndarray) or x.ndim < 2:
            got = x.shape if isinstance(x, np.ndarray) else type(x).__name__
            raise UserError(f"Flatten: input must have rank 2 or more (N, ...), got {got}")
        self._shape = x.shape if self.grad_enabled else None
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))

    def backward(self, grad_out, input_grad=True):
        if self._shape is None:
            raise RuntimeError("Flatten: backward needs a forward pass with gradients enabled first")
        return grad_out.reshape(self._shape) if input_grad else None

    def output_shape(self, input_shape):
        return (math.prod(input_shape),)

    def explain(self, x, position):
        """out[j] is the input value at the j-th position in (c, h, w) order: source = that position."""
        source = tuple(int(v) for v in np.unravel_index(position[0], x.shape))
        return dict(source=source, total=float(x[source]))

    def explain_backward(self, x, grad_out, position):
        """dx at an input position is grad_out at its place in the flattened order."""
        index = int(np.ravel_multi_index(position, x.shape))
        return dict(index=index, total=float(grad_out[index]))

    def to_onnx(self, graph, x, name):
        return graph.node("Flatten", [x], name, axis=1)  # (N, C, H, W) -> (N, C*H*W)

    def to_torch(self):
        return "Flatten", {}  # torch's defaults start_dim=1, end_dim=-1 are this Flatten
