"""The inference plan (plan.py): fused eval-mode steps equal the layers run one by one, to the bit, on any thread."""

import threading

import numpy as np
import pytest

import nanocnn as nc
from nanocnn.blas import single_thread
from nanocnn.inference import predict_proba
from nanocnn.losses import log_softmax
from nanocnn.plan import Plan
from nanocnn.presets import PRESETS


@nc.register_layer
class Shift(nc.Module):
    """A custom layer the plan does not know: out = x + 0.25 (any shape). Keeps nothing in eval mode."""

    def forward(self, x):
        return x + x.dtype.type(0.25)

    def backward(self, grad_out, input_grad=True):
        return grad_out


def random_network(rng, dtype, C=2, H=13, W=12):
    """A random stack of Conv2d (every strategy), ReLU, MaxPool2d (tiling or not), Dropout and Shift layers,
    ending, half of the time, in Flatten + Linear; built so that every shape fits."""
    layers, shape = [], (C, H, W)
    for _ in range(int(rng.integers(2, 8))):
        kind = rng.choice(["conv", "conv", "relu", "pool", "dropout", "shift"])
        if kind == "conv":
            k, s, p = int(rng.integers(1, 5)), int(rng.integers(1, 3)), int(rng.integers(0, 2))
            layer = nc.Conv2d(shape[0], int(rng.integers(1, 5)), k, stride=s, padding=p, dtype=dtype, rng=rng)
            layer.bias.data[:] = rng.standard_normal(layer.out_channels)
        elif kind == "relu":
            layer = nc.ReLU()
        elif kind == "pool":
            k = int(rng.integers(1, 4))
            s, p = (k, 0) if rng.random() < 0.6 else (int(rng.integers(1, 3)), int(rng.integers(0, k // 2 + 1)))
            layer = nc.MaxPool2d(k, stride=s, padding=p)
        elif kind == "dropout":
            layer = nc.Dropout(0.5, rng=rng)
        else:
            layer = Shift()
        try:
            new_shape = layer.output_shape(shape)
        except nc.UserError:
            continue
        if min(new_shape[1:]) < 1:
            continue
        layers.append(layer)
        shape = new_shape
    if rng.random() < 0.5:
        layers += [nc.Flatten(), nc.Linear(int(np.prod(shape)), 3, dtype=dtype, rng=rng)]
    return nc.Sequential(*layers).eval()


def one_by_one(model, x):
    """The layers' own eval-mode forwards in turn: what the plan must reproduce (BLAS on one thread, as
    nanocnn always runs it: a threaded product rounds differently)."""
    with single_thread():
        for layer in model.layers:
            x = layer.forward(x)
    return x


@pytest.mark.parametrize("seed", range(60))
def test_plan_equals_the_layers_one_by_one_to_the_bit(seed):
    rng = np.random.default_rng(seed)
    dtype = np.float32 if seed % 2 else np.float64
    model = random_network(rng, dtype)
    for n in (1, 5, 16):
        x = rng.standard_normal((n, 2, 13, 12)).astype(dtype)
        expected = one_by_one(model, x)
        with single_thread():
            got = model.plan().run(x)
        assert got.shape == expected.shape and got.dtype == expected.dtype
        assert got.tobytes() == expected.tobytes(), model
        piece = model.piece_size(x.shape[1:], dtype)  # model(x) gives the numbers of its pieces
        pieces = np.concatenate([one_by_one(model, x[i : i + piece]) for i in range(0, n, piece)])
        assert model(x).tobytes() == pieces.tobytes()


def test_the_default_preset_and_the_article_network_fuse_into_blocks():
    rng = np.random.default_rng(0)
    default = PRESETS["default"].build((1, 28, 28), 10, rng).eval()
    names = [step.__name__ for step, _ in default.plan().steps]
    assert names == ["_block", "_block", "_flatten", "_linear"]
    (_, (_, conv, pool, relu)) = default.plan().steps[0]
    assert conv is default[0] and pool is default[2] and relu
    x = rng.random((20, 1, 28, 28), dtype=np.float32)
    with single_thread():
        assert default.plan().run(x).tobytes() == one_by_one(default, x).tobytes()


def test_the_plan_follows_the_layers_modes_and_never_fuses_a_layer_that_keeps_gradients(rng):
    model = nc.Sequential(
        nc.Conv2d(1, 3, 3, rng=rng), nc.Dropout(0.5, rng=rng), nc.ReLU(), nc.MaxPool2d(2), nc.Flatten()
    ).eval()
    x = rng.random((6, 1, 9, 9), dtype=np.float32)
    plan = model.plan()
    assert len(plan.steps) == 2 and model.plan() is plan  # Dropout (eval) skipped; cached
    model[1].train()  # a Dropout in training mode under a gradient-free model: it must run, and draw masks
    assert model.plan() is not plan
    assert [step.__name__ for step, _ in model.plan().steps] == ["_block", "_layer", "_block", "_flatten"]
    assert not np.array_equal(model(x), model.eval()(x))
    model[2].enable_grad()  # a layer that keeps its cache for backward runs its own forward
    assert any(args == (model[2],) for _, args in model.plan().steps)
    model[2].enable_grad(False)
    assert np.array_equal(model(x), one_by_one(model, x))


def test_what_run_returns_is_the_callers_and_the_input_is_never_written(rng):
    model = nc.Sequential(nc.Conv2d(1, 2, 3, rng=rng), nc.ReLU(), nc.MaxPool2d(2)).eval()
    x = rng.standard_normal((4, 1, 8, 8)).astype(np.float32)
    before = x.copy()
    first = model(x)
    keep = first.copy()
    second = model(x + 1)
    assert np.array_equal(first, keep) and not np.shares_memory(first, second)
    assert np.array_equal(x, before)
    relu_first = nc.Sequential(nc.ReLU(), nc.MaxPool2d(2)).eval()
    relu_first(x)
    assert np.array_equal(x, before)


def test_one_plan_on_8_threads_gives_the_serial_outputs():
    rng = np.random.default_rng(5)
    model = random_network(np.random.default_rng(7), np.float32)
    plan = Plan(model.layers)
    inputs = [rng.standard_normal((int(n), 2, 13, 12)).astype(np.float32) for n in rng.integers(1, 20, 400)]
    serial = [one_by_one(model, x) for x in inputs]
    results = [None] * len(inputs)
    barrier = threading.Barrier(8)

    def work(t):
        barrier.wait()
        for i in range(t, len(inputs), 8):
            results[i] = plan.run(inputs[i])

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    with single_thread():  # OpenBLAS takes its thread count from the main thread only
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(results, serial))


def test_a_large_batch_through_model_x_equals_predict_proba_and_the_pieces(rng):
    model = PRESETS["default"].build((1, 28, 28), 10, rng).eval()
    x = rng.random((1001, 1, 28, 28), dtype=np.float32)
    logits = model(x)
    piece = model.piece_size(x.shape[1:])
    pieces = np.concatenate([one_by_one(model, x[i : i + piece]) for i in range(0, len(x), piece)])
    assert logits.tobytes() == pieces.tobytes()
    probs = predict_proba(model, x, threads=2)
    assert np.array_equal(probs, predict_proba(model, x, threads=1))
    assert np.array_equal(probs, np.exp(log_softmax(logits)))
