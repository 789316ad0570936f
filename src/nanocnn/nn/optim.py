"""Optimizers, SGD (momentum, weight decay) and Adam, each keeping its own per-parameter state; and the
learning-rate schedules. ``OPTIMIZERS`` and ``SCHEDULES`` are the one list of their names."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..validation import UserError, check_real
from .module import Parameter


class Optimizer:
    """Holds the parameters and per-parameter state; ``step()`` updates ``.data`` from ``.grad``."""

    state_names = ()

    def __init__(self, params: Iterable[Parameter], lr: float):
        self.params = list(params)
        if not self.params:
            raise UserError(f"{type(self).__name__}: got an empty parameter list")
        self.lr = check_real(lr, "lr", 0, low_open=True, owner=type(self).__name__)
        self.steps = 0
        self.state = [{k: np.zeros_like(p.data) for k in self.state_names} for p in self.params]

    def zero_grad(self):
        for p in self.params:
            p.zero_grad()

    def state_dict(self):
        """name -> ndarray: 'steps' and '<i>.<buffer>' for each parameter i."""
        out = {"steps": np.array(self.steps)}
        for i, st in enumerate(self.state):
            out.update({f"{i}.{k}": v.copy() for k, v in st.items()})
        return out

    def load_state_dict(self, state):
        expected = set(self.state_dict())
        if set(state) != expected:
            raise UserError(
                f"{type(self).__name__}: optimizer state has keys {sorted(state)}, expected {sorted(expected)}"
            )
        self.steps = int(state["steps"])
        for i, st in enumerate(self.state):
            for k, v in st.items():
                if state[f"{i}.{k}"].shape != v.shape:
                    raise UserError(
                        f"{type(self).__name__}: state {i}.{k} has shape {state[f'{i}.{k}'].shape}, expected {v.shape}"
                    )
                np.copyto(v, state[f"{i}.{k}"])


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's formulation:
    g = grad + weight_decay * p;  buf = momentum * buf + g (buf = g on the first step);  p -= lr * buf.
    """

    state_names = ("momentum_buffer",)

    def __init__(self, params: Iterable[Parameter], lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.momentum = check_real(momentum, "momentum", 0, 1, high_open=True, owner="SGD")
        self.weight_decay = check_real(weight_decay, "weight_decay", 0, owner="SGD")

    def step(self):
        for p, st in zip(self.params, self.state):
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            if self.momentum:
                buf = st["momentum_buffer"]
                if self.steps == 0:
                    buf[...] = g
                else:
                    buf *= self.momentum
                    buf += g
                g = buf
            p.data -= self.lr * g
        self.steps += 1


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), PyTorch's formulation, weight decay added to the gradient:
    m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;  p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps).
    """

    state_names = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr)
        self.betas = tuple(check_real(b, "betas", 0, 1, high_open=True, owner="Adam") for b in betas)
        self.eps = check_real(eps, "eps", 0, owner="Adam")
        self.weight_decay = check_real(weight_decay, "weight_decay", 0, owner="Adam")

    def step(self):
        b1, b2 = self.betas
        t = self.steps + 1
        bias1, bias2 = 1 - b1**t, 1 - b2**t
        for p, st in zip(self.params, self.state):
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            m, v = st["exp_avg"], st["exp_avg_sq"]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            denom = np.sqrt(v / bias2)
            denom += self.eps
            p.data -= (self.lr / bias1) * m / denom
        self.steps = t


OPTIMIZERS = {"sgd": SGD, "adam": Adam}  # the names --optimizer takes


def constant(lr: float, step: int, total_steps: int) -> float:
    """The same learning rate at every step."""
    return lr


def cosine(lr: float, step: int, total_steps: int) -> float:
    """Half a cosine from lr at step 0 down to 0 at step total_steps (cosine annealing, Loshchilov & Hutter 2017)."""
    return lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))


def onecycle(lr: float, step: int, total_steps: int) -> float:
    """One cycle (Smith & Topin, 2017; PyTorch's OneCycleLR): up from lr / 25 to lr over the first 30% of the
    steps, then down to lr / 250,000, each phase along half a cosine: a large rate mid-run, a tiny one at the end."""
    start, end, warm = lr / 25, lr / 25 / 1e4, max(1, round(0.3 * total_steps))
    if step < warm:
        return start + (lr - start) * (1 - math.cos(math.pi * step / warm)) / 2
    t = (step - warm) / max(1, total_steps - warm)
    return end + (lr - end) * (1 + math.cos(math.pi * t)) / 2


SCHEDULES = {"constant": constant, "cosine": cosine, "onecycle": onecycle}  # --schedule: (lr, step, total) -> lr
