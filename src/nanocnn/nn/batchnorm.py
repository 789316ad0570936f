"""Batch normalisation: each channel shifted and scaled to mean 0 and variance 1 over the batch, then by a learned
gamma and beta (Ioffe & Szegedy, 2015), with running statistics kept for inference."""

import numpy as np

from ..validation import UserError, check_array, check_float_dtype, check_int, check_real
from .functional import batch_norm_backward, batch_norm_forward
from .module import Buffer, Module, Parameter
from .registry import register_layer


@register_layer
class BatchNorm2d(Module):
    """out[n, c, h, w] = (x[n, c, h, w] - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c]

    Shapes: x : (N, C, H, W) -> out : (N, C, H, W); weight, bias : (C,) (gamma and beta; none without affine).
    In training, mean and var are the batch's own over (N, H, W) (var biased), and the running statistics
    move towards them as PyTorch's do: running = (1 - momentum) * running + momentum * batch, the running
    variance unbiased (M / (M - 1), M = N*H*W); ``num_batches_tracked`` counts the updates. In eval mode the
    running statistics are used. A batch run in parts on threads or ranks normalises each part with its own
    statistics (nanocnn.parallel), as PyTorch's DistributedDataParallel does without SyncBatchNorm.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, dtype=np.float32):
        name = "BatchNorm2d"
        self.num_features = check_int(num_features, "num_features", 1, owner=name)
        self.eps = check_real(eps, "eps", 0, low_open=True, owner=name)
        self.momentum = check_real(momentum, "momentum", 0, 1, owner=name)
        if not isinstance(affine, bool):
            raise UserError(f"{name}: affine must be true or false, got {affine!r}")
        dtype = check_float_dtype(dtype, name)
        C = self.num_features
        self.weight = Parameter(np.ones(C, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(C, dtype=dtype)) if affine else None
        self.running_mean = Buffer(np.zeros(C, dtype=dtype))
        self.running_var = Buffer(np.ones(C, dtype=dtype))
        self.num_batches_tracked = Buffer(np.zeros((), dtype=np.int64))
        self._cache = None

    def _affine(self):
        return (None, None) if self.weight is None else (self.weight.data, self.bias.data)

    def forward(self, x):
        """x : (N, C, H, W) -> (N, C, H, W), normalised with the batch's statistics (training) or the running ones."""
        check_array(x, "BatchNorm2d", 4, self.num_features, self.running_mean.data.dtype)
        gamma, beta = self._affine()
        if self.training:
            M = x.shape[0] * x.shape[2] * x.shape[3]
            if M < 2:
                raise UserError(f"BatchNorm2d: training needs more than one value per channel, got input {x.shape}")
            out, mean, var, cache = batch_norm_forward(x, gamma, beta, self.eps)
            m = x.dtype.type(self.momentum)
            self.running_mean.data *= 1 - m
            self.running_mean.data += m * mean
            self.running_var.data *= 1 - m
            self.running_var.data += m * var * x.dtype.type(M / (M - 1))  # unbiased, as PyTorch keeps it
            self.num_batches_tracked.data += 1
        else:
            mean, var = self.running_mean.data, self.running_var.data
            out, _, _, cache = batch_norm_forward(x, gamma, beta, self.eps, mean, var)
        self._cache = cache if self.grad_enabled else None
        return out

    def backward(self, grad_out, input_grad=True):
        """grad_out : (N, C, H, W) -> dx : (N, C, H, W); adds dweight and dbias into the parameters."""
        if self._cache is None:
            raise RuntimeError("BatchNorm2d: backward needs a forward pass with gradients enabled first")
        cache, self._cache = self._cache, None
        dx, dgamma, dbeta = batch_norm_backward(cache, grad_out, None if self.weight is None else self.weight.data)
        if self.weight is not None:
            self.weight.grad += dgamma
            self.bias.grad += dbeta
        return dx if input_grad else None

    def output_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[0] != self.num_features:
            C = self.num_features
            raise UserError(f"BatchNorm2d: input must have {C} channels, got shape {tuple(input_shape)}")
        return tuple(input_shape)

    def macs(self, input_shape):
        return 2 * int(np.prod(input_shape))  # a multiply and an add per value (eval: x * scale + shift)

    def explain(self, x, position):
        """How out[c, h, w] comes from x[c, h, w] at inference: the running mean and variance of channel c."""
        c = position[0]
        mean, var = float(self.running_mean.data[c]), float(self.running_var.data[c])
        gamma, beta = (1.0, 0.0) if self.weight is None else (float(self.weight.data[c]), float(self.bias.data[c]))
        v = float(x[position])
        return dict(
            input=v,
            mean=mean,
            var=var,
            eps=self.eps,
            gamma=gamma,
            beta=beta,
            total=(v - mean) / np.sqrt(var + self.eps) * gamma + beta,
        )

    def explain_backward(self, x, grad_out, position):
        """At inference the statistics are constants: dx = dout * gamma / sqrt(var + eps)."""
        c = position[0]
        gamma = 1.0 if self.weight is None else float(self.weight.data[c])
        g, var = float(grad_out[position]), float(self.running_var.data[c])
        return dict(grad=g, gamma=gamma, var=var, eps=self.eps, total=g * gamma / np.sqrt(var + self.eps))

    def spec(self):
        return dict(
            num_features=self.num_features,
            eps=self.eps,
            momentum=self.momentum,
            affine=self.weight is not None,
            dtype=self.running_mean.data.dtype.name,
        )

    def to_onnx(self, graph, x, name):
        C = self.num_features
        gamma, beta = self._affine()
        inputs = [
            x,
            graph.weight(f"{name}.weight", np.ones(C) if gamma is None else gamma),
            graph.weight(f"{name}.bias", np.zeros(C) if beta is None else beta),
            graph.weight(f"{name}.running_mean", self.running_mean.data),
            graph.weight(f"{name}.running_var", self.running_var.data),
        ]
        return graph.node("BatchNormalization", inputs, name, epsilon=self.eps)  # inference: the running statistics

    def to_torch(self):
        return "BatchNorm2d", {k: v for k, v in self.spec().items() if k != "dtype"}

    def extra_repr(self):
        text = f"{self.num_features}"
        text += f", eps={self.eps}" if self.eps != 1e-5 else ""
        text += f", momentum={self.momentum}" if self.momentum != 0.1 else ""
        return text + (", affine=False" if self.weight is None else "")
