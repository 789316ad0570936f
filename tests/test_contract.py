"""The layer contract (nn/module.py): a layer written the documented way works everywhere a built-in one does.

Scale and NoisyGate below are written only from the README's "Writing your own layer" section.
"""

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import nanocnn as nc
from helpers import check_layer_gradients, rel_error
from nanocnn.backend.blas import single_thread
from nanocnn.backend.inference import part_size
from nanocnn.parallel import DataParallel
from nanocnn.train import train_step
from nanocnn.train.evaluation import predict_proba


@nc.register_layer
class Scale(nc.Module):
    """out = x * gain[c], one learned gain per channel. x : (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, channels, dtype=np.float32):
        self.channels = channels
        self.gain = nc.Parameter(np.ones(channels, dtype=dtype))
        self._x = None

    def forward(self, x):
        self._x = x if self.grad_enabled else None
        return x * self.gain.data[:, None, None]

    def backward(self, grad_out, input_grad=True):
        if self._x is None:
            raise RuntimeError("Scale: backward needs a forward pass with gradients enabled first")
        self.gain.grad += (grad_out * self._x).sum(axis=(0, 2, 3))
        return grad_out * self.gain.data[:, None, None] if input_grad else None

    def spec(self):
        return {"channels": self.channels, "dtype": self.gain.data.dtype.name}

    def to_onnx(self, graph, x, name):
        return graph.node("Mul", [x, graph.weight(f"{name}.gain", self.gain.data.reshape(-1, 1, 1))], name)


@nc.register_layer
class NoisyGate(nc.Module):
    """In training, multiply each activation by 1 + noise drawn from self.rng; the identity in eval mode."""

    def __init__(self, sigma=0.1, rng=None):
        self.sigma = sigma
        self.rng = np.random.default_rng() if rng is None else rng
        self._noise = None

    def forward(self, x):
        noise = 1 + self.sigma * self.rng.standard_normal(x.shape).astype(x.dtype) if self.training else 1
        self._noise = noise if self.grad_enabled else None
        return x * noise

    def backward(self, grad_out, input_grad=True):
        if self._noise is None:
            raise RuntimeError("NoisyGate: backward needs a forward pass with gradients enabled first")
        return grad_out * self._noise if input_grad else None

    def spec(self):
        return {"sigma": self.sigma}


def custom_net(rng, dtype=np.float32):
    return nc.Sequential(
        nc.Conv2d(1, 4, 3, padding=1, dtype=dtype, rng=rng),
        Scale(4, dtype),
        nc.ReLU(),
        NoisyGate(0.2, rng=rng),
        nc.MaxPool2d(2),
        nc.Flatten(),
        nc.Linear(4 * 5 * 5, 3, dtype=dtype, rng=rng),
    )


def data(rng, n=96, dtype=np.float32):
    return rng.standard_normal((n, 1, 10, 10)).astype(dtype), rng.integers(0, 3, n)


def test_custom_layer_gradients_pass_the_finite_difference_check(rng):
    layer = Scale(3, np.float64)
    layer.gain.data[:] = rng.standard_normal(3)
    check_layer_gradients(layer, rng.standard_normal((2, 3, 4, 5)), rng)


def test_a_custom_first_layer_with_parameters_trains_through_sequential(rng):
    """The first layer with parameters is asked for backward(..., input_grad=False)."""
    model = nc.Sequential(Scale(1), nc.Flatten(), nc.Linear(100, 3, rng=rng))
    x, y = data(rng)
    opt = nc.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(30):
        losses.append(train_step(model, x, y)[1])
        opt.step()
        opt.zero_grad()
    assert losses[-1] < 0.8 * losses[0] and not np.array_equal(model[0].gain.data, np.ones(1))


def test_custom_layers_train_on_two_threads_exactly_as_on_one(rng):
    """Scale's parameter gets part gradients; NoisyGate's replicas draw their own noise, the same on any thread
    count."""
    results = []
    for threads in (1, 2):
        model = custom_net(np.random.default_rng(3))
        x, y = data(np.random.default_rng(4))
        opt = nc.Adam(model.parameters(), lr=1e-2)
        with DataParallel(model, threads) as parallel:
            for _ in range(3):
                parallel.forward_backward(train_step, x, y)
                opt.step()
                opt.zero_grad()
        results.append(model.state_dict())
    one, two = results
    assert all(np.array_equal(one[k], two[k]) for k in one)
    assert not np.array_equal(one["1.gain"], np.ones(4, np.float32))


def test_replicas_of_a_custom_layer_share_weights_and_own_their_state(rng):
    model = custom_net(rng)
    replica = model.replicate()
    assert replica[1].gain.data is model[1].gain.data and replica[1].gain.grad is not model[1].gain.grad
    model(data(rng)[0])
    assert model[1]._x is not None and replica[1]._x is None
    replica.reseed(model)
    assert replica[3].rng is not model[3].rng


def test_custom_layers_save_and_load_and_unknown_ones_are_refused(tmp_path, rng):
    model = custom_net(rng)
    model[1].gain.data[:] = [1.5, 0.5, 2.0, 1.0]
    path = tmp_path / "custom.npz"
    nc.save(model, path)
    loaded, _ = nc.load(path)
    x = data(rng, 5)[0]
    assert isinstance(loaded[1], Scale) and np.array_equal(loaded.eval()(x), model.eval()(x))
    from nanocnn.nn import LAYERS

    saved = LAYERS.pop("Scale")
    try:
        with pytest.raises(nc.UserError, match="unknown layer type 'Scale'.*register_layer"):
            nc.load(path)
    finally:
        LAYERS["Scale"] = saved


def test_a_custom_layer_exports_to_onnx_from_its_own_method_and_safetensors_says_why_not(tmp_path, rng):
    """Scale's to_onnx (the README's) gives a graph onnxruntime runs to model(x)'s numbers; without to_torch,
    safetensors export is one line naming the layer and the method, and writes nothing."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    layers = [Scale(1), nc.Conv2d(1, 4, 3, padding=1, rng=rng), Scale(4), nc.ReLU(), nc.MaxPool2d(2), nc.Flatten()]
    model = nc.Sequential(*layers, nc.Linear(4 * 5 * 5, 3, rng=rng))
    model[2].gain.data[:] = [1.5, -0.5, 2.0, 0.25]
    path = nc.export_onnx(model, tmp_path / "scale.onnx", (1, 10, 10))
    x = data(rng, 7)[0]
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (onnx_logits,) = session.run(None, {"input": x})
    assert rel_error(onnx_logits, model.eval()(x)) < 1e-5
    with pytest.raises(nc.UserError, match=r"layer 0 \(Scale\) has no torch.nn equivalent: give Scale a to_torch"):
        nc.save_safetensors(model, tmp_path / "scale.safetensors", (1, 10, 10))
    assert not (tmp_path / "scale.safetensors").exists()


def test_a_subclass_that_changes_forward_never_inherits_export_or_fusion(tmp_path, rng):
    """A Conv2d whose forward doubles its output is no longer a Conv2d for ONNX, PyTorch or the inference plan."""

    class Doubled(nc.Conv2d):
        def forward(self, x):
            return 2 * super().forward(x)

    class Renamed(nc.Conv2d):  # forward unchanged: it is still a convolution
        pass

    layer = Doubled(1, 2, 3, rng=rng)
    assert layer.declared("to_onnx") is None and layer.declared("to_torch") is None
    assert layer.declared("fusion") is None and Renamed(1, 2, 3).declared("fusion") == "conv"
    model = nc.Sequential(layer, nc.ReLU(), nc.Flatten()).eval()
    x = data(rng, 3)[0]
    expected = np.maximum(2 * nc.Conv2d.forward(layer, x), 0).reshape(3, -1)
    assert np.array_equal(model(x), expected)  # the plan ran Doubled's own forward, not a fused conv
    with pytest.raises(nc.UserError, match=r"layer 0 \(Doubled\) has no ONNX form"):
        nc.export_onnx(model, tmp_path / "d.onnx", (1, 10, 10))


def test_a_custom_layer_shows_on_the_serve_page(rng):
    """The page's views are read from the trace, not from the layers' classes: Scale appears with its output."""
    from nanocnn.serve import Api

    model = custom_net(rng).eval()
    api = Api(model, {"input_shape": [1, 10, 10], "num_classes": 3}, "custom")
    answer = api.predict({"width": 10, "height": 10, "pixels": [0] * 40 + [255] * 20 + [0] * 40})
    layers = answer["layers"]
    assert [layer["kind"] for layer in layers][:4] == ["Conv2d", "Scale", "ReLU", "NoisyGate"]
    assert layers[1]["description"] == "Scale(channels=4, dtype='float32')" and layers[1]["shape"] == [4, 10, 10]
    assert answer["prediction"] in range(3) and answer["saliency"]["scale"] > 0


def test_register_layer_refuses_non_layers_and_name_clashes():
    with pytest.raises(nc.UserError, match="expected a subclass of nanocnn.Module"):
        nc.register_layer(int)

    class Conv2d(nc.Module):
        pass

    with pytest.raises(nc.UserError, match="already registered as 'Conv2d'"):
        nc.register_layer(Conv2d)


def test_eval_mode_with_gradients_gives_the_input_gradient_without_dropout(rng):
    """enable_grad() in eval mode: gradients of the eval-mode function (as saliency maps need)."""
    model = custom_net(rng, np.float64)
    x = rng.standard_normal((1, 1, 10, 10))
    model.eval().enable_grad()
    out = model(x)
    assert np.array_equal(out, model(x))  # NoisyGate is off
    dx = model.backward(np.ones_like(out))
    eps, i = 1e-6, (0, 0, 4, 5)
    x2 = x.copy()
    x2[i] += eps
    x3 = x.copy()
    x3[i] -= eps
    assert dx[i] == pytest.approx((model(x2).sum() - model(x3).sum()) / (2 * eps), rel=1e-6)


def test_one_model_shared_by_8_threads_gives_the_serial_outputs():
    """8 threads x 200 eval-mode calls on one model, batches of 1 to 24 images: every output equals the serial one."""
    rng = np.random.default_rng(0)
    model = nc.Sequential(
        nc.Conv2d(1, 8, 5, padding=2, rng=rng),
        nc.ReLU(),
        nc.MaxPool2d(2),
        nc.Conv2d(8, 16, 3, padding=1, rng=rng),
        nc.ReLU(),
        nc.Dropout(0.5, rng=rng),
        nc.Flatten(),
        nc.Linear(16 * 8 * 8, 10, rng=rng),
    ).eval()
    sizes = rng.integers(1, 25, 8 * 200)
    inputs = [rng.random((int(n), 1, 16, 16), dtype=np.float32) for n in sizes]
    before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    serial = [model(x) for x in inputs]
    results = [None] * len(inputs)
    barrier = threading.Barrier(8)

    def work(t):
        barrier.wait()
        for i in range(t, len(inputs), 8):
            results[i] = model(inputs[i])

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    with single_thread():  # what a server does: OpenBLAS takes its thread count from the main thread only
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    wrong = sum(not np.array_equal(a, b) for a, b in zip(results, serial))
    assert wrong == 0, f"{wrong} of {len(inputs)} outputs differ"
    blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    assert blas == before  # BLAS has its own thread count back once the last caller left


def test_eval_forward_runs_any_batch_in_parts_with_the_same_numbers(rng):
    """A large eval-mode batch runs in parts internally: the output equals the parts run one by one."""
    model = custom_net(rng).eval()
    x = rng.random((2500, 1, 10, 10), dtype=np.float32)
    size = part_size(model, x.shape[1:])
    assert 8 <= size < len(x) // 2  # at least two whole parts and a rest
    expected = np.concatenate([model(x[i : i + size]) for i in range(0, len(x), size)])
    assert np.array_equal(model(x), expected)
    whole = model.enable_grad()(x)  # with gradients enabled, one batch
    assert rel_error(model.enable_grad(False)(x), whole) < 1e-5
    assert np.array_equal(predict_proba(model, x, threads=2), predict_proba(model, x, threads=1))


def test_an_empty_batch_gives_an_empty_output_in_both_modes(rng):
    """A rank whose share of the evaluation is empty, or a caller with no images, gets (0, K)."""
    model = custom_net(rng)
    empty = np.zeros((0, 1, 10, 10), np.float32)
    assert model.train()(empty).shape == (0, 3) and model.eval()(empty).shape == (0, 3)
    assert predict_proba(model, empty).shape == (0, 3)
