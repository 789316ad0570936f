"""Agreement with PyTorch (an independent, widely used framework) on hundreds of random configurations.

PyTorch is optional: these tests skip cleanly when it is not installed. Weights are copied across,
everything runs in float64, and forward outputs and all gradients must agree to 1e-10 relative error.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nanocnn as nc
from helpers import CONV_SWEEP, POOL_SWEEP, conv_layer, pool_input, pool_layer, rel_error

torch = pytest.importorskip("torch")
F = torch.nn.functional


def torch_grads(fn, *arrays):
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    return tensors, fn(*tensors)


@pytest.mark.parametrize("case", CONV_SWEEP, ids=str)
def test_conv2d_matches_torch(case, rng):
    N, C, K, H, W, KH, KW, SH, SW, PH, PW = case
    layer = conv_layer(case, rng)
    x = rng.standard_normal((N, C, H, W))
    out = layer(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    (tx, tw, tb), tout = torch_grads(
        lambda a, w, b: F.conv2d(a, w, b, (SH, SW), (PH, PW)), x, layer.weight.data, layer.bias.data
    )
    tout.backward(torch.tensor(dout))
    assert rel_error(out, tout.detach().numpy()) < 1e-10
    assert rel_error(dx, tx.grad.numpy()) < 1e-10
    assert rel_error(layer.weight.grad, tw.grad.numpy()) < 1e-10
    assert rel_error(layer.bias.grad, tb.grad.numpy()) < 1e-10


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("case", POOL_SWEEP, ids=str)
def test_maxpool2d_matches_torch(case, ties, rng):
    N, C, H, W, KH, KW, SH, SW, PH, PW = case
    x = pool_input(case, rng, ties)
    layer = pool_layer(case)
    out = layer(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    (tx,), tout = torch_grads(lambda a: F.max_pool2d(a, (KH, KW), (SH, SW), (PH, PW)), x)
    tout.backward(torch.tensor(dout))
    assert rel_error(out, tout.detach().numpy()) < 1e-12
    assert rel_error(dx, tx.grad.numpy()) < 1e-10


@given(seed=st.integers(0, 2**32 - 1))
def test_linear_relu_loss_match_torch(seed):
    rng = np.random.default_rng(seed)
    n, fin, fout = (int(v) for v in rng.integers(1, 20, size=3))
    fout = max(fout, 2)
    layer, relu = nc.Linear(fin, fout, dtype=np.float64, rng=rng), nc.ReLU()
    layer.bias.data[:] = rng.standard_normal(fout)
    x, y = rng.standard_normal((n, fin)) * 3, rng.integers(0, fout, n)
    logits = relu(layer(x))
    loss, dlogits = nc.softmax_cross_entropy(logits, y)
    dx = layer.backward(relu.backward(dlogits))
    (tx, tw, tb), tlogits = torch_grads(
        lambda a, w, b: F.relu(F.linear(a, w, b)), x, layer.weight.data, layer.bias.data
    )
    tloss = F.cross_entropy(tlogits, torch.tensor(y))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-12)
    assert rel_error(dx, tx.grad.numpy()) < 1e-10
    assert rel_error(layer.weight.grad, tw.grad.numpy()) < 1e-10
    assert rel_error(layer.bias.grad, tb.grad.numpy()) < 1e-10


@pytest.mark.parametrize(
    "name, kwargs", [("sgd", dict(lr=0.1, momentum=0.9, weight_decay=0.01)), ("adam", dict(lr=0.01, weight_decay=0.01))]
)
def test_optimizers_match_torch(name, kwargs):
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((3, 4))
    p = nc.Parameter(w0.copy())
    tp = torch.tensor(w0.copy(), requires_grad=True)
    ours = {"sgd": nc.SGD, "adam": nc.Adam}[name]([p], **kwargs)
    theirs = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[name]([tp], **kwargs)
    for _ in range(5):
        g = rng.standard_normal((3, 4))
        p.grad[...] = g
        tp.grad = torch.tensor(g)
        ours.step()
        theirs.step()
    assert rel_error(p.data, tp.detach().numpy()) < 1e-12
