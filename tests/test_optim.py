"""Two steps of SGD with momentum and of Adam, against numbers worked by hand."""

import math

import numpy as np
import pytest

import nanocnn as nc


def param(value, grad):
    p = nc.Parameter(np.array([value], dtype=np.float64))
    p.grad[...] = grad
    return p


def test_sgd_momentum_two_steps():
    # lr 0.1, momentum 0.9, w0 = 1, gradient 2 both steps.
    # step 1: buf = 2;             w = 1 - 0.1*2 = 0.8
    # step 2: buf = 0.9*2 + 2 = 3.8; w = 0.8 - 0.1*3.8 = 0.42
    p = param(1.0, 2.0)
    opt = nc.SGD([p], lr=0.1, momentum=0.9)
    opt.step()
    assert p.data[0] == pytest.approx(0.8)
    opt.step()
    assert p.data[0] == pytest.approx(0.42)


def test_sgd_weight_decay_two_steps():
    # lr 0.1, weight decay 0.5, no momentum, w0 = 1, gradient 0: g = 0.5*w.
    # step 1: w = 1 - 0.1*0.5 = 0.95; step 2: w = 0.95 - 0.1*0.475 = 0.9025
    p = param(1.0, 0.0)
    opt = nc.SGD([p], lr=0.1, weight_decay=0.5)
    opt.step()
    opt.step()
    assert p.data[0] == pytest.approx(0.9025)


def test_adam_two_steps():
    # lr 0.1, betas (0.9, 0.999), eps 1e-8, w0 = 1, gradients 2 then -1.
    # step 1: m = 0.2, v = 0.004; m_hat = 2, v_hat = 4; w = 1 - 0.1 * 2/(2 + 1e-8) = 0.9 (+5e-10)
    # step 2: m = 0.18 - 0.1 = 0.08; v = 0.003996 + 0.001 = 0.004996
    #         m_hat = 0.08/0.19; v_hat = 0.004996/0.001999; w = w1 - 0.1 * m_hat / (sqrt(v_hat) + 1e-8)
    p = param(1.0, 2.0)
    opt = nc.Adam([p], lr=0.1)
    opt.step()
    assert p.data[0] == pytest.approx(0.9, abs=1e-8)
    p.grad[...] = -1.0
    opt.step()
    w1 = 1 - 0.1 * 2 / (2 + 1e-8)
    expected = w1 - 0.1 * (0.08 / 0.19) / (math.sqrt(0.004996 / 0.001999) + 1e-8)
    assert p.data[0] == pytest.approx(expected, rel=1e-12)
    assert p.data[0] == pytest.approx(0.873367, abs=1e-6)


def test_optimizer_state_round_trip():
    p, q = param(1.0, 2.0), param(1.0, 2.0)
    a, b = nc.Adam([p], lr=0.1), nc.Adam([q], lr=0.1)
    a.step()
    b.load_state_dict(a.state_dict())
    q.data[...] = p.data
    a.step()
    b.step()
    assert p.data[0] == q.data[0] and b.steps == 2


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: nc.SGD(p, lr=0), "SGD: lr must be a finite number > 0, got 0"),
        (lambda p: nc.SGD(p, lr=float("nan")), "SGD: lr must be a finite number > 0, got nan"),
        (lambda p: nc.SGD(p, lr=0.1, momentum=1.5), "SGD: momentum must be a finite number >= 0 and < 1, got 1.5"),
        (lambda p: nc.Adam(p, lr=-1), "Adam: lr must be a finite number > 0, got -1"),
        (lambda p: nc.Adam(p, betas=(0.9, 1.0)), "Adam: betas must be a finite number >= 0 and < 1, got 1.0"),
        (lambda p: nc.Adam([], lr=0.1), "Adam: got an empty parameter list"),
    ],
)
def test_bad_hyperparameters_are_rejected(make, message):
    with pytest.raises(nc.UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make([param(1.0, 0.0)])
