"""The inference plan (backend/plan.py): fused eval-mode steps equal the layers run one by one, to the bit, on
any thread."""

import threading

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import nanocnn as nc
from nanocnn.backend.blas import single_thread
from nanocnn.backend.inference import part_size, plan_of
from nanocnn.backend.plan import Plan
from nanocnn.nn.losses import log_softmax
from nanocnn.parallel import MAX_THREADS, run_on_threads
from nanocnn.train.evaluation import predict_proba
from nanocnn.train.presets import PRESETS


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


@given(seed=st.integers(0, 2**32 - 1))
def test_plan_equals_the_layers_one_by_one_to_the_bit(seed):
    rng = np.random.default_rng(seed)
    dtype = np.float32 if seed % 2 else np.float64
    model = random_network(rng, dtype)
    for n in (1, 5, 16):
        x = rng.standard_normal((n, 2, 13, 12)).astype(dtype)
        expected = one_by_one(model, x)
        with single_thread():
            got = plan_of(model).run(x)
        assert got.shape == expected.shape and got.dtype == expected.dtype
        assert got.tobytes() == expected.tobytes(), model
        size = part_size(model, x.shape[1:], dtype)  # model(x) gives the numbers of its parts
        parts = np.concatenate([one_by_one(model, x[i : i + size]) for i in range(0, n, size)])
        assert model(x).tobytes() == parts.tobytes()


def test_the_presets_fuse_into_blocks():
    rng = np.random.default_rng(0)
    classic = PRESETS["classic"].build((1, 28, 28), 10, rng).eval()
    assert plan_of(classic).groups == [
        ((classic[0], classic[1], classic[2]), True),  # conv, ReLU, pool: one fused block
        ((classic[3], classic[4], classic[5]), True),
        ((classic[6],), False),  # Flatten and Linear run their own forward
        ((classic[7],), False),
    ]
    default = PRESETS["default"].build((1, 28, 28), 10, rng).eval()
    groups = [([type(layer).__name__ for layer in layers], fused) for layers, fused in plan_of(default).groups]
    assert groups == [(["Conv2d"], True), (["BatchNorm2d"], False), (["ReLU"], False)] + [
        (["Conv2d", "MaxPool2d"], True),  # the pool fused with its conv; batch norm runs its own forward
        (["BatchNorm2d"], False),
        (["ReLU"], False),
    ] * 2 + [(["Flatten"], False), (["Linear"], False)]
    x = rng.random((20, 1, 28, 28), dtype=np.float32)
    with single_thread():
        for model in (classic, default):
            assert plan_of(model).run(x).tobytes() == one_by_one(model, x).tobytes()


def test_the_plan_follows_the_layers_modes_and_never_fuses_a_layer_that_keeps_gradients(rng):
    model = nc.Sequential(
        nc.Conv2d(1, 3, 3, rng=rng), nc.Dropout(0.5, rng=rng), nc.ReLU(), nc.MaxPool2d(2), nc.Flatten()
    ).eval()
    x = rng.random((6, 1, 9, 9), dtype=np.float32)
    plan = plan_of(model)
    assert plan.groups == [(tuple(model.layers[:4]), True), ((model[4],), False)]  # Dropout (eval) inside
    assert plan_of(model) is plan  # cached
    model[1].train()  # a Dropout in training mode under a gradient-free model: it must run, and draw masks
    assert plan_of(model) is not plan
    assert [(len(layers), fused) for layers, fused in plan_of(model).groups] == [
        (1, True),
        (1, False),
        (2, True),
        (1, False),
    ]
    assert not np.array_equal(model(x), model.eval()(x))
    model[2].enable_grad()  # a layer that keeps its cache for backward runs its own forward
    assert ((model[2],), False) in plan_of(model).groups
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


def test_a_large_batch_through_model_x_equals_predict_proba_and_the_parts(rng):
    model = PRESETS["default"].build((1, 28, 28), 10, rng).eval()
    x = rng.random((1001, 1, 28, 28), dtype=np.float32)
    logits = model(x)
    size = part_size(model, x.shape[1:])
    parts = np.concatenate([one_by_one(model, x[i : i + size]) for i in range(0, len(x), size)])
    assert logits.tobytes() == parts.tobytes()
    probs = predict_proba(model, x, threads=2)
    assert np.array_equal(probs, predict_proba(model, x, threads=1))
    assert np.array_equal(probs, np.exp(log_softmax(logits)))


def test_large_batches_share_one_pool_of_threads_and_a_job_that_asks_for_threads_runs_in_its_own(rng):
    """model(x) on batches of many parts uses the process's one pool: the same threads, kept alive, call after
    call (a pool per call would leave a trail of finished threads). A job already on a pool thread that asks
    for threads runs its jobs itself, so no pool thread ever waits for another."""
    model = PRESETS["default"].build((1, 28, 28), 10, rng).eval()
    x = rng.random((600, 1, 28, 28), dtype=np.float32)
    first, seen = model(x), set()
    inner = lambda i: run_on_threads(lambda j: (i, j), [(0,), (1,), (2,)], 3)  # noqa: E731
    for _ in range(6):
        assert model(x).tobytes() == first.tobytes()
        assert run_on_threads(inner, [(0,), (1,)], 2) == [[(0, 0), (0, 1), (0, 2)], [(1, 0), (1, 1), (1, 2)]]
        seen |= {t for t in threading.enumerate() if t.name.startswith("nanocnn")}
    assert seen and len(seen) <= MAX_THREADS - 1 and all(t.is_alive() for t in seen)
