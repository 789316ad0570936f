"""Whole networks: gradients through every layer, float32 end to end, input gradient skipping, save/load."""

import numpy as np
import pytest

import nanocnn as nc
from helpers import numerical_grad, rel_error


def two_channel_net(rng, dtype=np.float64):
    """conv-relu-pool-conv(non-square kernel and stride)-relu-flatten-linear for (N, 2, 6, 7) inputs."""
    return nc.Sequential(
        nc.Conv2d(2, 3, 3, padding=1, dtype=dtype, rng=rng),
        nc.ReLU(),
        nc.MaxPool2d(2),
        nc.Conv2d(3, 4, (2, 3), stride=(1, 2), dtype=dtype, rng=rng),
        nc.ReLU(),
        nc.Flatten(),
        nc.Linear(4 * 2 * 1, 5, dtype=dtype, rng=rng),
    )


def test_whole_network_gradient_check(rng):
    """conv-relu-pool-conv-relu-flatten-linear-loss, every parameter and the input, float64."""
    model = two_channel_net(rng)
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.data.shape) * 0.5
    x = rng.standard_normal((3, 2, 6, 7))
    y = rng.integers(0, 5, 3)
    assert model.output_shape((2, 6, 7)) == (5,)
    loss = lambda: nc.softmax_cross_entropy(model(x), y)[0]
    model.zero_grad()
    _, dlogits = nc.softmax_cross_entropy(model(x), y)
    dx = model.backward(dlogits)
    errors = {"input": rel_error(dx, numerical_grad(loss, x))}
    for name, p in model.named_parameters():
        errors[name] = rel_error(p.grad, numerical_grad(loss, p.data))
    assert max(errors.values()) < 1e-6, errors
    assert sorted(errors) == ["0.bias", "0.weight", "3.bias", "3.weight", "6.bias", "6.weight", "input"]


def test_float32_stays_float32_through_a_training_step(rng):
    model = nc.Sequential(
        nc.Conv2d(1, 4, 3, padding=1, rng=rng),
        nc.ReLU(),
        nc.MaxPool2d(2),
        nc.Dropout(0.3, rng=rng),
        nc.Flatten(),
        nc.Linear(4 * 4 * 4, 3, rng=rng),
    )
    opt = nc.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    x = rng.random((5, 1, 8, 8), dtype=np.float32)
    logits = model(x)
    loss, dlogits = nc.softmax_cross_entropy(logits, np.array([0, 1, 2, 0, 1]))
    dx = model.backward(dlogits)
    assert logits.dtype == dlogits.dtype == dx.dtype == np.float32
    opt.step()
    for p in model.parameters():
        assert p.data.dtype == p.grad.dtype == np.float32
        for buffer in opt.state[opt.params.index(p)].values():
            assert buffer.dtype == np.float32


def test_backward_without_input_grad_skips_the_first_layer_input_gradient(rng, monkeypatch):
    model = two_channel_net(rng)
    x = rng.standard_normal((2, 2, 6, 7))
    calls = []
    import nanocnn.nn.conv as conv

    real = conv.conv2d_backward

    def counted(*args):  # counts the input gradients computed
        dx, dweight, dbias = real(*args)
        calls.extend([1] if dx is not None else [])
        return dx, dweight, dbias

    monkeypatch.setattr(conv, "conv2d_backward", counted)
    _, d = nc.softmax_cross_entropy(model(x), np.array([0, 1]))
    assert model.backward(d, input_grad=False) is None
    assert len(calls) == 1  # only the second conv's input gradient was needed
    grads = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    model(x)
    model.backward(d)
    assert len(calls) == 3  # both convs' this time
    assert all(np.array_equal(a, p.grad) for a, p in zip(grads, model.parameters()))


def test_gradients_accumulate_until_zero_grad(rng):
    model = two_channel_net(rng)
    x, y = rng.standard_normal((2, 2, 6, 7)), np.array([1, 3])
    _, d = nc.softmax_cross_entropy(model(x), y)
    model.backward(d)
    once = [p.grad.copy() for p in model.parameters()]
    model(x)
    model.backward(d)
    assert all(np.allclose(p.grad, 2 * g) for p, g in zip(model.parameters(), once))
    model.zero_grad()
    assert all(not p.grad.any() for p in model.parameters())


def test_state_dict_round_trip_and_strict_errors(rng, tmp_path):
    model, other = two_channel_net(rng), two_channel_net(np.random.default_rng(99))
    other.load_state_dict(model.state_dict())
    x = rng.standard_normal((2, 2, 6, 7))
    assert np.array_equal(model(x), other(x))
    state = model.state_dict()
    state["0.weight"] = np.zeros((1, 1, 1, 1))
    del state["3.bias"]
    state["9.weight"] = np.zeros(3)
    with pytest.raises(ValueError) as e:
        other.load_state_dict(state)
    message = str(e.value)
    assert "missing keys ['3.bias']" in message and "unexpected keys ['9.weight']" in message
    assert "0.weight: expected (3, 2, 3, 3), got (1, 1, 1, 1)" in message
    path = tmp_path / "m.npz"
    nc.save(model, path, meta={"note": "hi"})
    loaded, meta = nc.load(path)
    assert meta == {"note": "hi"} and repr(loaded) == repr(model)
    assert np.array_equal(loaded(x), model(x))


def test_summary_counts_parameters_and_multiply_adds():
    model = nc.Sequential(nc.Conv2d(1, 2, 3), nc.ReLU(), nc.MaxPool2d(2), nc.Flatten(), nc.Linear(2 * 3 * 3, 4))
    text = model.summary((1, 8, 8))
    # conv: 2*1*3*3 weights + 2 biases = 20 params; 6*6 outputs * 2 filters * 9 = 648 MACs.
    # linear: 18*4 + 4 = 76 params; 72 MACs.
    assert "(2, 6, 6)" in text and "(2, 3, 3)" in text and "(18,)" in text
    assert text.splitlines()[-1].split()[-2:] == ["96", "720"]
