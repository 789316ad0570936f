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


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (5, 2, 1, 1), (1, 4, 6, 3), (8, 6, 3, 3)], ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_matches_torch_in_training_and_eval_with_its_running_statistics(shape, affine, rng):
    C = shape[1]
    ours = nc.BatchNorm2d(C, momentum=0.3, affine=affine, dtype=np.float64)
    theirs = torch.nn.BatchNorm2d(C, momentum=0.3, affine=affine).double()
    if affine:
        ours.weight.data[:] = rng.standard_normal(C)
        ours.bias.data[:] = rng.standard_normal(C)
        theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    for step in range(4):  # several training steps: forward, backward, the running statistics
        x = rng.standard_normal(shape) * (step + 1) + step
        dout = rng.standard_normal(shape)
        ours.zero_grad()
        out = ours.train()(x)
        dx = ours.backward(dout)
        (tx,), tout = torch_grads(theirs.train(), x)
        theirs.zero_grad()
        tout.backward(torch.tensor(dout))
        assert rel_error(out, tout.detach().numpy()) < 1e-10 and rel_error(dx, tx.grad.numpy()) < 1e-10
        if affine:
            assert rel_error(ours.weight.grad, theirs.weight.grad.numpy()) < 1e-10
            assert rel_error(ours.bias.grad, theirs.bias.grad.numpy()) < 1e-10
    state = theirs.state_dict()
    for name, value in ours.state_dict().items():
        assert rel_error(value, state[name].numpy()) < 1e-10, name
    x = rng.standard_normal(shape)
    dout = rng.standard_normal(shape)
    out = ours.eval().enable_grad()(x)
    dx = ours.backward(dout)
    (tx,), tout = torch_grads(theirs.eval(), x)
    tout.backward(torch.tensor(dout))
    assert rel_error(out, tout.detach().numpy()) < 1e-10 and rel_error(dx, tx.grad.numpy()) < 1e-10


@pytest.mark.parametrize("case", POOL_SWEEP, ids=str)
def test_average_pooling_matches_torch(case, rng):
    N, C, H, W, KH, KW, SH, SW, PH, PW = case
    x = rng.standard_normal((N, C, H, W))
    layer = nc.AvgPool2d((KH, KW), (SH, SW), (PH, PW))
    out = layer(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    (tx,), tout = torch_grads(lambda a: F.avg_pool2d(a, (KH, KW), (SH, SW), (PH, PW), count_include_pad=True), x)
    tout.backward(torch.tensor(dout))
    assert rel_error(out, tout.detach().numpy()) < 1e-12 and rel_error(dx, tx.grad.numpy()) < 1e-10


def test_global_average_pooling_and_a_residual_block_match_torch(rng):
    x = rng.standard_normal((3, 4, 6, 5))
    gap = nc.AdaptiveAvgPool2d(1)
    (tx,), tout = torch_grads(lambda a: F.adaptive_avg_pool2d(a, 1), x)
    dout = rng.standard_normal((3, 4, 1, 1))
    tout.backward(torch.tensor(dout))
    assert rel_error(gap(x), tout.detach().numpy()) < 1e-12 and rel_error(gap.backward(dout), tx.grad.numpy()) < 1e-12
    conv, short = (
        nc.Conv2d(4, 6, 3, stride=2, padding=1, dtype=np.float64, rng=rng),
        nc.Conv2d(4, 6, 1, stride=2, dtype=np.float64, rng=rng),
    )
    layer = nc.Residual(nc.Sequential(conv, nc.ReLU()), short)
    out = layer(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    tensors = [
        torch.tensor(a, requires_grad=True)
        for a in (x, conv.weight.data, conv.bias.data, short.weight.data, short.bias.data)
    ]
    tx, w1, b1, w2, b2 = tensors
    tout = F.relu(F.conv2d(tx, w1, b1, 2, 1)) + F.conv2d(tx, w2, b2, 2)
    tout.backward(torch.tensor(dout))
    assert rel_error(out, tout.detach().numpy()) < 1e-12 and rel_error(dx, tx.grad.numpy()) < 1e-10
    assert (
        rel_error(conv.weight.grad, w1.grad.numpy()) < 1e-10 and rel_error(short.weight.grad, w2.grad.numpy()) < 1e-10
    )
