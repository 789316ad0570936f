"""The two building blocks every layer shares, and the contract a layer keeps: ``Parameter`` and ``Module``."""

from __future__ import annotations

import copy

import numpy as np

from ..validation import UserError


class Parameter:
    """A trainable array and the gradient that ``backward`` accumulates into it.

    data : ndarray of any shape; grad : ndarray of the same shape and dtype, zero until
    a backward pass adds to it, and cleared only by ``zero_grad()``.
    """

    def __init__(self, data: np.ndarray):
        self.data = data
        self.grad = np.zeros_like(data)

    @property
    def shape(self) -> tuple:
        return self.data.shape

    def zero_grad(self) -> None:
        self.grad.fill(0)

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Buffer:
    """An array a layer keeps and saves but does not train: BatchNorm2d's running statistics.

    data : ndarray of any shape and dtype. It is in ``state_dict()`` beside the parameters (PyTorch's
    ``register_buffer``); the optimizer never sees it; a replica gets a copy of its own.
    """

    def __init__(self, data: np.ndarray):
        self.data = data

    @property
    def shape(self) -> tuple:
        return self.data.shape

    def __repr__(self):
        return f"Buffer(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class of every layer. The contract, which the built-in layers keep and yours must too:

    - ``forward(x) -> out`` computes the output. When ``self.grad_enabled`` is true it also keeps what
      ``backward`` needs, in attributes whose names start with ``_`` (``self._x``, ``self._mask``).
      When it is false, forward keeps nothing (and must write nothing shared): that is what makes one
      eval-mode model safe to call from many threads at once.
    - ``backward(grad_out, input_grad=True) -> grad_in`` adds each parameter's gradient into its
      ``.grad`` (``+=``, never ``=``) and returns the gradient with respect to the input, or None when
      ``input_grad`` is false (the first layer of a network: nobody needs the gradient of the data).
      It uses what the last forward kept; calling it without one is a RuntimeError.
    - Parameters are the ``Parameter`` attributes, found by ``named_parameters()`` in assignment order;
      ``Buffer`` attributes (saved, never trained: running statistics) by ``named_buffers()``; layers inside
      a layer (its ``Module`` attributes, ``named_children()``) are found the same way, and their parameters
      and buffers are named '<child>.<name>' as in PyTorch.
    - ``training`` switches behaviour that differs in training (Dropout); ``train()`` and ``eval()``
      set it, and ``grad_enabled`` with it, on the layer and every layer inside it. ``enable_grad()``
      turns gradients back on in eval mode, e.g. for the gradient of a prediction with respect to its input.
    - Per-call state lives in ``_*`` attributes only: a ``replicate()`` (a copy for another thread, as
      ``nanocnn.parallel`` makes for each part of a batch) starts with them set to None, shares the
      parameters' arrays, has gradients of its own and copies of the buffers. ``clone()`` copies the
      parameters' arrays too: a private model.
    - A layer that draws random numbers keeps its ``np.random.Generator`` in ``self.rng``;
      ``replica.reseed(original)`` gives a replica a generator of its own, drawn from the original's.
    - ``spec()`` returns the constructor's keyword arguments as JSON values, so ``nanocnn.save`` can
      record the architecture; ``register_layer`` lets ``nanocnn.load`` rebuild your class by name.
    - ``output_shape(input_shape)`` and ``macs(input_shape)`` describe one example (no N) for
      ``summary()``; ``scratch_size(input_shape)`` is the working memory forward needs per example,
      in elements, beyond its output (inference sizes its parts from it).

    Optional, each read only from the class that defines ``forward`` (or a class below it), so a subclass
    that changes ``forward`` never inherits a description of what its parent computed:

    - ``to_onnx(graph, x, name) -> output name``: the layer as ONNX nodes (``graph.node(op, inputs, name,
      **attributes)``, ``graph.weight(name, array)``; see ``nanocnn.io.onnx``). Without it, export says so.
    - ``to_torch() -> (torch.nn class name, kwargs)``: the PyTorch module that computes the same thing with
      the same ``state_dict`` names, for safetensors export. Without it, export says so.
    - ``fusion``: the name of a pattern the inference plan (``nanocnn.backend.plan``) fuses the layer into
      ("conv", "relu", "max_pool", "dropout"); None (the default) runs the layer's own ``forward``.
    - ``explain(x, position) -> dict`` and ``explain_backward(x, grad_out, position) -> dict``: for one example
      (no N axis), the terms that make up out[position] and dx[position], in float64, with their ``total``;
      the serve page shows them when a learner clicks a number. Without them the page shows the number alone.
    """

    training = True
    grad_enabled = True
    fusion = None

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad_out, input_grad=True):
        raise NotImplementedError

    # --- what a layer holds -------------------------------------------------------------------------

    def named_children(self) -> list[tuple[str, Module]]:
        """The layers directly inside this one, (name, layer), in assignment order."""
        return [(name, v) for name, v in vars(self).items() if isinstance(v, Module)]

    def modules(self) -> list[Module]:
        """This layer and every layer inside it, depth first."""
        return [self] + [m for _, child in self.named_children() for m in child.modules()]

    def named_parameters(self, prefix: str = "") -> list[tuple[str, Parameter]]:
        own = [(prefix + name, v) for name, v in vars(self).items() if isinstance(v, Parameter)]
        return own + [p for name, child in self.named_children() for p in child.named_parameters(f"{prefix}{name}.")]

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> list[tuple[str, Buffer]]:
        own = [(prefix + name, v) for name, v in vars(self).items() if isinstance(v, Buffer)]
        return own + [b for name, child in self.named_children() for b in child.named_buffers(f"{prefix}{name}.")]

    def buffers(self) -> list[Buffer]:
        return [b for _, b in self.named_buffers()]

    def named_state(self, prefix: str = "") -> list[tuple[str, Parameter | Buffer]]:
        """Every parameter and buffer, as PyTorch's state_dict orders them: a layer's own parameters, then its
        own buffers, then each layer inside it in turn."""
        own = [(prefix + n, v) for n, v in vars(self).items() if isinstance(v, Parameter)]
        own += [(prefix + n, v) for n, v in vars(self).items() if isinstance(v, Buffer)]
        return own + [s for name, child in self.named_children() for s in child.named_state(f"{prefix}{name}.")]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def state_dict(self) -> dict[str, np.ndarray]:
        """name -> a copy of the parameter's or buffer's array."""
        return {name: p.data.copy() for name, p in self.named_state()}

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy arrays into the parameters and buffers. Missing, unexpected and mis-shaped keys are reported
        together; values are cast to each array's dtype (as PyTorch's load_state_dict does)."""
        params = dict(self.named_state())
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        mismatched = [
            f"{k}: expected {params[k].shape}, got {np.shape(state[k])}"
            for k in params
            if k in state and np.shape(state[k]) != params[k].shape
        ]
        kinds = {True: "floating point", False: "integers"}  # a weight takes floating point only, a counter integers
        mismatched += [
            f"{k}: expected {kinds[params[k].data.dtype.kind == 'f']}, got {np.asarray(state[k]).dtype}"
            for k in params
            if k in state and (np.asarray(state[k]).dtype.kind == "f") != (params[k].data.dtype.kind == "f")
        ]
        problems = []
        if missing and strict:
            problems.append(f"missing keys {missing}")
        if unexpected and strict:
            problems.append(f"unexpected keys {unexpected}")
        if mismatched:
            problems.append("shape mismatch " + "; ".join(mismatched))
        if problems:
            raise UserError("load_state_dict: " + ", ".join(problems))
        for k, p in params.items():
            if k in state:
                np.copyto(p.data, state[k], casting="same_kind")

    # --- modes and copies ---------------------------------------------------------------------------

    def train(self, mode: bool = True):
        self.training = self.grad_enabled = bool(mode)
        for _, child in self.named_children():
            child.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def enable_grad(self, mode: bool = True):
        """Keep what backward needs (or not) without changing the training behaviour."""
        self.grad_enabled = bool(mode)
        for _, child in self.named_children():
            child.enable_grad(mode)
        return self

    def replicate(self):
        """A copy for another thread: the same parameter arrays, its own gradients, no per-call state."""
        replica = copy.copy(self)
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                setattr(replica, name, Parameter(value.data))
            elif isinstance(value, Buffer):
                setattr(replica, name, Buffer(value.data.copy()))
            elif isinstance(value, Module):
                setattr(replica, name, value.replicate())
            elif name.startswith("_"):
                setattr(replica, name, None)
        return replica

    def clone(self):
        """A private copy: its own parameter arrays and random generators, no per-call state. Training it
        (an optimizer step on its parameters) leaves this model untouched."""
        twin = self.replicate()
        for p in twin.parameters():
            p.data = p.data.copy()
        for layer in twin.modules():
            if isinstance(getattr(layer, "rng", None), np.random.Generator):
                layer.rng = copy.deepcopy(layer.rng)
        return twin

    def reseed(self, original: Module) -> None:
        """Give this replica random generators of its own, seeded from ``original``'s (each ``rng``).

        Called in one thread, replicas in a fixed order, it makes parts of a batch draw different
        masks and every run draw the same ones.
        """
        rng = getattr(original, "rng", None)
        if isinstance(rng, np.random.Generator):
            self.rng = np.random.default_rng(rng.integers(2**63))
        for (_, mine), (_, theirs) in zip(self.named_children(), original.named_children()):
            mine.reseed(theirs)

    # --- descriptions -------------------------------------------------------------------------------

    def output_shape(self, input_shape: tuple) -> tuple:
        """Shape of one example's output, given one example's input shape (without N)."""
        return tuple(input_shape)

    def macs(self, input_shape: tuple) -> int:
        """Multiply-adds of the forward pass for one example."""
        return 0

    def scratch_size(self, input_shape: tuple) -> int:
        """Elements of working memory the forward pass needs per example, beyond its output."""
        return 0

    def summary_rows(self, name: str, input_shape: tuple, indent: str = "") -> list[tuple]:
        """[(name and layer, output shape, parameters, multiply-adds)] for one example of ``input_shape``:
        this layer's row; a container (Sequential, Residual) adds its layers' rows after its own, indented."""
        params = sum(p.data.size for p in self.parameters())
        return [
            (f"{indent}{name}: {self.short_repr()}", self.output_shape(input_shape), params, self.macs(input_shape))
        ]

    def spec(self) -> dict:
        """The constructor arguments that rebuild this layer (saved in checkpoints, never code)."""
        return {}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.spec().items())

    def short_repr(self) -> str:
        """The layer on one line, layers inside it included: Residual(block=Sequential(Conv2d(...), ReLU()))."""
        children = self.named_children()
        if not children:
            return repr(self)
        inner = ", ".join(c.short_repr() if n.isdigit() else f"{n}={c.short_repr()}" for n, c in children)
        return f"{type(self).__name__}({inner})"

    def declared(self, name: str):
        """``self.<name>`` (to_onnx, to_torch, fusion) if the class that defines it is the one that defines
        ``forward`` or a subclass of it, else None: a subclass that overrides ``forward`` without declaring
        ``name`` again computes something other than its parent's description says, so it is never trusted."""
        mro = type(self).__mro__
        where = next((cls for cls in mro if name in vars(cls)), None)
        forward = next(cls for cls in mro if "forward" in vars(cls))
        return getattr(self, name) if where is not None and issubclass(where, forward) else None

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


def short(hw):
    """(3, 3) -> '3', (3, 5) -> '(3, 5)': how a pair reads in a layer's repr."""
    return str(hw[0]) if hw[0] == hw[1] else str(tuple(hw))
