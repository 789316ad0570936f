"""The two building blocks every layer shares: ``Parameter`` (a tensor and its gradient) and ``Module``."""
import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Parameter:
    """A trainable array and the gradient that ``backward`` accumulates into it.

    data : ndarray of any shape; grad : ndarray of the same shape and dtype, zero until
    a backward pass adds to it, and cleared only by ``zero_grad()``.
    """

    def __init__(self, data):
        self.data = data
        self.grad = np.zeros_like(data)

    @property
    def shape(self):
        return self.data.shape

    def zero_grad(self):
        self.grad.fill(0)

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


def check_float_dtype(dtype, layer):
    """Parameters are float32 (training) or float64 (gradient checks); anything else is an error."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in FLOAT_DTYPES:
        raise ValueError(f"{layer}: dtype must be float32 or float64, got {dtype!r}")
    return dt


class Module:
    """Base class: ``forward(x)`` and ``backward(grad_out) -> grad_in`` side by side in each layer.

    Parameters are the ``Parameter`` attributes, in the order they were assigned.
    ``input_shape -> output_shape`` and multiply-add counts feed the model summary.
    Attributes named ``_*`` hold per-call state only (caches, workspaces): the replicas that run a
    batch's parts on other threads (nanocnn.parallel) start with them set to None.
    """

    training = True

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad_out):
        raise NotImplementedError

    def named_parameters(self):
        return [(name, v) for name, v in vars(self).items() if isinstance(v, Parameter)]

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def zero_grad(self):
        for p in self.parameters():
            p.zero_grad()

    def train(self, mode=True):
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def output_shape(self, input_shape):
        """Shape of one example's output, given one example's input shape (without N)."""
        return tuple(input_shape)

    def macs(self, input_shape):
        """Multiply-adds of the forward pass for one example."""
        return 0

    def spec(self):
        """The constructor arguments that rebuild this layer (saved in checkpoints, never code)."""
        return {}

    def extra_repr(self):
        return ", ".join(f"{k}={v!r}" for k, v in self.spec().items())

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


def short(hw):
    """(3, 3) -> '3', (3, 5) -> '(3, 5)': how a pair reads in a layer's repr."""
    return str(hw[0]) if hw[0] == hw[1] else str(tuple(hw))
