"""Export and import: ONNX runs like nanocnn, safetensors round-trips exactly and rebuilds in PyTorch, bad files fail.

onnx, onnxruntime and safetensors are test extras; PyTorch is optional (its tests skip without it).
Every ONNX comparison runs onnxruntime on one thread, in float32, at batch sizes 1 and 7 from one file.
"""

import json
import os
import pickle
import struct
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import safetensors.numpy
from safetensors import safe_open

import nanocnn as nc
from helpers import train_run
from nanocnn.io.export import (
    export_model,
    export_onnx,
    load_safetensors,
    pytorch_spec,
    save_safetensors,
)
from nanocnn.io.safetensors import encode_safetensors, read_safetensors
from nanocnn.nn import from_spec
from nanocnn.train.presets import build_default
from nanocnn.validation import UserError

# ---------------------------------------------------------------------------------------------- helpers


def randomize_biases(model, rng):
    """nanocnn starts biases at zero, which would hide a bias exported wrongly: give them random values."""
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.data[...] = rng.standard_normal(p.data.shape) * 0.5
    return model


def random_model(seed, dtype=np.float32):
    """A seeded random classifier -> (model in eval mode, input_shape (C, H, W)).

    One or two conv stages (non-square kernels, strides 1-2, padding 0-2, bias or not), each maybe followed
    by ReLU, a max-pool (stride <= kernel, padding <= kernel // 2) and Dropout; then Flatten, Linear,
    ReLU, Dropout, Linear.
    """
    r = np.random.default_rng(seed)
    shape = (int(r.integers(1, 4)), int(r.integers(6, 15)), int(r.integers(6, 15)))
    input_shape, layers = shape, []
    for _ in range(int(r.integers(1, 3))):
        C, H, W = shape
        PH, PW = (int(v) for v in r.integers(0, 3, size=2))
        KH, KW = int(r.integers(1, min(5, H + 2 * PH) + 1)), int(r.integers(1, min(5, W + 2 * PW) + 1))
        layers.append(
            nc.Conv2d(
                C,
                int(r.integers(2, 6)),
                (KH, KW),
                stride=tuple(int(v) for v in r.integers(1, 3, 2)),
                padding=(PH, PW),
                bias=bool(r.integers(2)),
                dtype=dtype,
                rng=r,
            )
        )
        shape = layers[-1].output_shape(shape)
        if r.random() < 0.7:
            layers.append(nc.ReLU())
        KH, KW = int(r.integers(1, min(3, shape[1]) + 1)), int(r.integers(1, min(3, shape[2]) + 1))
        if r.random() < 0.7:
            stride = (int(r.integers(1, KH + 1)), int(r.integers(1, KW + 1)))
            padding = (int(r.integers(0, KH // 2 + 1)), int(r.integers(0, KW // 2 + 1)))
            layers.append(nc.MaxPool2d((KH, KW), stride=stride, padding=padding))
            shape = layers[-1].output_shape(shape)
        if r.random() < 0.3:
            layers.append(nc.Dropout(0.5, rng=r))
    hidden = int(r.integers(3, 9))
    layers += [
        nc.Flatten(),
        nc.Linear(int(np.prod(shape)), hidden, bias=bool(r.integers(2)), dtype=dtype, rng=r),
        nc.ReLU(),
        nc.Dropout(0.25, rng=r),
        nc.Linear(hidden, int(r.integers(2, 6)), dtype=dtype, rng=r),
    ]
    return randomize_biases(nc.Sequential(*layers), r).eval(), input_shape


def named_model(name):
    """Hand-picked networks that cover each layer kind and option -> (model in eval mode, input_shape)."""
    r = np.random.default_rng(len(name))
    if name == "default preset":
        return randomize_biases(build_default((1, 28, 28), 10, r), r).eval(), (1, 28, 28)
    if name == "conv only, no bias":  # the output stays (N, F, OH, OW): no class count
        layers = [nc.Conv2d(2, 3, (3, 5), stride=(2, 1), padding=(0, 2), bias=False, rng=r)]
    elif name == "pool with padding":
        layers = [
            nc.Conv2d(1, 4, 2, rng=r),
            nc.MaxPool2d((3, 2), stride=(1, 2), padding=(1, 1)),
            nc.ReLU(),
            nc.Flatten(),
            nc.Linear(4 * 8 * 5, 3, rng=r),
        ]
    elif name == "linear without bias":
        layers = [nc.Flatten(), nc.Dropout(0.9), nc.Linear(81, 4, bias=False, rng=r)]
    elif name == "dropout only":  # no ONNX node at all but the identity
        layers = [nc.Dropout(0.5)]
    elif name == "nested sequential":
        layers = [
            nc.Sequential(nc.Conv2d(1, 2, 3, padding=1, rng=r), nc.ReLU()),
            nc.MaxPool2d(3),
            nc.Sequential(nc.Flatten(), nc.Sequential(nc.Linear(18, 5, rng=r))),
        ]
    else:
        raise AssertionError(name)
    return randomize_biases(nc.Sequential(*layers), r).eval(), {"conv only, no bias": (2, 7, 9)}.get(name, (1, 9, 9))


NAMED = [
    "default preset",
    "conv only, no bias",
    "pool with padding",
    "linear without bias",
    "dropout only",
    "nested sequential",
]
SEEDS = list(range(12))


def run_onnx(path, x):
    """onnxruntime's output for x : float32 (N, C, H, W), on one thread (2 shared cores, deterministic)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def close(a, b, tol):
    """max |a - b| within tol relative to the largest magnitude (at least 1): logits are O(1)-O(10)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    return np.abs(a - b).max() <= tol * max(1.0, np.abs(b).max())


def user_error(fn, *args, words=(), **kwargs):
    """Call fn expecting a one-line UserError containing every one of ``words``; returns the message."""
    with pytest.raises(UserError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message
    for word in words:
        assert str(word) in message, message
    return message


def safetensors_file(path, header, data=b""):
    """Write a hand-made safetensors file: header (a dict, or raw bytes) after its 8-byte length, then data."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


class Trap:
    """Unpickling this creates the file ``marker``: proof that nothing was unpickled when it does not exist."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


class Scale(nc.Module):
    """A user's own layer: no ONNX or torch.nn equivalent."""

    def forward(self, x):
        return 2 * x


# ------------------------------------------------------------------------------------------------- ONNX


@pytest.mark.parametrize("case", NAMED + SEEDS)
def test_onnx_runs_like_nanocnn(case, tmp_path):
    model, input_shape = named_model(case) if isinstance(case, str) else random_model(case)
    path = export_onnx(model, tmp_path / "model.onnx", input_shape)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    rng = np.random.default_rng(99)
    for N in (1, 7):  # one file, two batch sizes: the batch dimension is open
        x = rng.random((N, *input_shape), dtype=np.float32)
        expected = model(x)
        assert close(run_onnx(path, x), expected, 1e-5), (N, np.abs(run_onnx(path, x) - expected).max())


def test_onnx_graph_and_metadata(tmp_path):
    model, input_shape = named_model("default preset")
    proto = onnx.load(export_onnx(model, tmp_path / "m.onnx", input_shape))
    assert proto.ir_version == 7 and [(o.domain, o.version) for o in proto.opset_import] == [("", 13)]
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["nanocnn_version"] == nc.__version__ and props["num_classes"] == "10"
    assert (props["input_dtype"], props["input_layout"], props["input_range"]) == ("float32", "NCHW", "[0, 1]")
    assert json.loads(props["input_shape"]) == ["N", 1, 28, 28] and from_spec(json.loads(props["nanocnn_spec"]))
    dims = lambda value: [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
    assert dims(proto.graph.input[0]) == ["N", 1, 28, 28] and dims(proto.graph.output[0]) == ["N", 10]
    assert [n.op_type for n in proto.graph.node] == ["Conv", "Relu", "MaxPool"] * 2 + ["Flatten", "Gemm"]
    assert sorted(i.name for i in proto.graph.initializer) == sorted(model.state_dict())


def test_onnx_leaves_dropout_out_and_exports_float64_as_float32(tmp_path):
    model, input_shape = random_model(3, dtype=np.float64)
    assert any(isinstance(layer, nc.Dropout) for layer in model.layers)
    path = export_onnx(model, tmp_path / "m.onnx", input_shape)
    assert "Dropout" not in {n.op_type for n in onnx.load(path).graph.node}
    x = np.random.default_rng(0).random((7, *input_shape))
    assert close(run_onnx(path, x.astype(np.float32)), model(x), 1e-5)


def test_onnx_refuses_a_custom_layer_before_writing(tmp_path):
    model = nc.Sequential(nc.Conv2d(1, 2, 3), Scale(), nc.Flatten())
    user_error(
        export_onnx, model, tmp_path / "m.onnx", (1, 5, 5), words=("layer 1", "Scale", "no ONNX form", "to_onnx")
    )
    user_error(save_safetensors, model, tmp_path / "m.safetensors", words=("layer 1", "Scale", "torch.nn"))
    assert list(tmp_path.iterdir()) == []


def test_onnx_without_the_onnx_package(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` now raises ImportError
    model, input_shape = named_model("pool with padding")
    user_error(export_onnx, model, tmp_path / "m.onnx", input_shape, words=("pip install 'nanocnn[export]'",))
    assert list(tmp_path.iterdir()) == []


def test_onnx_checks_the_shapes_it_is_given(tmp_path):
    model, _ = named_model("pool with padding")
    user_error(export_onnx, model, tmp_path / "m.onnx", (3, 9, 9), words=("(3, 9, 9)", "channels"))
    user_error(export_onnx, model, tmp_path / "m.onnx", (1, 9), words=("input_shape", "(1, 9)"))
    user_error(export_onnx, model, tmp_path / "m.onnx", (1, 9, 9), num_classes=4, words=("num_classes is 4", "3"))
    user_error(export_model, model, tmp_path / "m.onnx", words=("input_shape",))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------ safetensors


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_safetensors_round_trip_is_exact(dtype, tmp_path):
    model, input_shape = random_model(5, dtype=dtype)
    path = save_safetensors(model, tmp_path / "w.safetensors", input_shape, meta={"epoch": 3, "note": "ok"})
    loaded, meta = load_safetensors(path)  # the architecture from the file
    filled, _ = load_safetensors(path, random_model(5, dtype=dtype)[0].eval())  # a model the caller has
    for other in (loaded, filled):
        assert other.spec() == model.spec()
        for (name, a), (other_name, b) in zip(model.state_dict().items(), other.state_dict().items()):
            assert name == other_name and a.dtype == b.dtype and a.tobytes() == b.tobytes()
    x = np.random.default_rng(1).random((3, *input_shape)).astype(dtype)
    assert np.array_equal(loaded.eval()(x), model(x))
    assert meta["input_shape"] == list(input_shape) and meta["num_classes"] == model.output_shape(input_shape)[0]
    assert (meta["epoch"], meta["note"], meta["nanocnn_version"]) == (3, "ok", nc.__version__)


def test_the_safetensors_package_reads_our_files(tmp_path):
    model, input_shape = random_model(6)
    path = save_safetensors(model, tmp_path / "w.safetensors", input_shape, num_classes=None)
    theirs = safetensors.numpy.load_file(path)
    assert theirs.keys() == model.state_dict().keys()
    assert all(np.array_equal(theirs[k], v) and theirs[k].dtype == v.dtype for k, v in model.state_dict().items())
    with safe_open(path, "np") as f:
        metadata = f.metadata()
    assert all(isinstance(v, str) for v in metadata.values())
    assert json.loads(metadata["nanocnn_spec"]) == json.loads(json.dumps(model.spec()))
    assert json.loads(metadata["input_shape"]) == list(input_shape)


def test_files_written_by_the_safetensors_package_load(tmp_path):
    model, _ = random_model(7)
    r = np.random.default_rng(7)
    state = {k: r.standard_normal(v.shape) for k, v in model.state_dict().items()}  # float64 arrays
    safetensors.numpy.save_file(state, tmp_path / "f64.safetensors", metadata={"format": "np"})
    loaded, meta = load_safetensors(tmp_path / "f64.safetensors", model)
    assert meta == {"format": "np"}  # not JSON: kept as the string it is
    assert all(np.array_equal(loaded.state_dict()[k], v.astype(np.float32)) for k, v in state.items())
    half = {k: v.astype(np.float16) for k, v in state.items()}
    safetensors.numpy.save_file(half, tmp_path / "f16.safetensors")
    loaded, _ = load_safetensors(tmp_path / "f16.safetensors", model)
    assert all(np.array_equal(loaded.state_dict()[k], v.astype(np.float32)) for k, v in half.items())
    assert read_safetensors(tmp_path / "f16.safetensors")[0].keys() == state.keys()


def test_shape_mismatch_reports_every_problem_at_once(tmp_path):
    big = nc.Sequential(nc.Conv2d(1, 4, 3), nc.Flatten(), nc.Linear(36, 3), nc.Linear(3, 2))
    small = nc.Sequential(
        nc.Conv2d(1, 2, 3), nc.Flatten(), nc.Linear(18, 3, bias=False), nc.ReLU(), nc.ReLU(), nc.Linear(3, 2)
    )
    path = save_safetensors(big, tmp_path / "w.safetensors")
    before = small.state_dict()
    user_error(
        load_safetensors,
        path,
        small,
        words=(
            path,
            "missing keys ['5.bias', '5.weight']",
            "unexpected keys ['2.bias', '3.bias', '3.weight']",
            "0.weight: expected (2, 1, 3, 3), got (4, 1, 3, 3)",
            "2.weight: expected (3, 18), got (3, 36)",
        ),
    )
    assert all(np.array_equal(before[k], v) for k, v in small.state_dict().items())  # nothing half-loaded


def test_weights_must_be_finite_floats_and_a_model_is_needed_for_foreign_files(tmp_path):
    model = nc.Sequential(nc.Flatten(), nc.Linear(4, 2))
    state = model.state_dict()
    state["1.bias"][0] = np.nan
    safetensors.numpy.save_file(state, tmp_path / "nan.safetensors")
    user_error(load_safetensors, tmp_path / "nan.safetensors", model, words=("nan.safetensors", "1.bias", "finite"))
    safetensors.numpy.save_file({"1.weight": np.zeros((2, 4), np.int64)}, tmp_path / "int.safetensors")
    user_error(load_safetensors, tmp_path / "int.safetensors", model, words=("int.safetensors", "I64", "1.weight"))
    safetensors.numpy.save_file(model.state_dict(), tmp_path / "plain.safetensors")
    user_error(load_safetensors, tmp_path / "plain.safetensors", words=("plain.safetensors", "pass the model"))
    user_error(load_safetensors, tmp_path / "plain.safetensors", nc.Linear(4, 2), words=("Sequential",))


def test_meta_must_be_json(tmp_path):
    model = nc.Sequential(nc.Flatten(), nc.Linear(4, 2))
    user_error(
        save_safetensors,
        model,
        tmp_path / "w.safetensors",
        meta={"rng": np.random.default_rng()},
        words=("meta['rng']", "JSON"),
    )
    user_error(
        save_safetensors,
        nc.Sequential(nc.Sequential(nc.ReLU())),
        tmp_path / "w.safetensors",
        words=("layer 0", "Sequential"),
    )
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------- PyTorch


@pytest.mark.parametrize("dtype, seed", [(np.float32, s) for s in range(6)] + [(np.float64, s) for s in range(6)])
def test_pytorch_rebuilds_the_model_from_the_file(dtype, seed, tmp_path):
    torch = pytest.importorskip("torch")
    import safetensors.torch

    model, input_shape = random_model(seed, dtype=dtype)
    path = save_safetensors(model, tmp_path / "w.safetensors", input_shape)
    # the three lines of the export module's docstring, word for word (float64: .double() before loading)
    spec = json.loads(safe_open(path, "pt").metadata()["pytorch"])
    torch_model = torch.nn.Sequential(*(getattr(torch.nn, name)(**kwargs) for name, kwargs in spec))
    torch_model = torch_model.double() if dtype == np.float64 else torch_model
    torch_model.load_state_dict(safetensors.torch.load_file(path))
    torch_model.eval()
    x = np.random.default_rng(seed).random((7, *input_shape)).astype(dtype)
    with torch.no_grad():
        logits = torch_model(torch.from_numpy(x)).numpy()
    assert logits.dtype == dtype and close(logits, model(x), 1e-10 if dtype == np.float64 else 1e-5)


def test_random_models_cover_every_pytorch_option():
    """The parity test above must see Flatten, padded pooling, bias=False and Dropout, or it proves little."""
    specs = [pytorch_spec(random_model(seed)[0]) for seed in range(6)]
    seen = {name for spec in specs for name, _ in spec}
    assert seen == {"Conv2d", "ReLU", "MaxPool2d", "Dropout", "Flatten", "Linear"}
    assert any(n == "MaxPool2d" and kw["padding"] != [0, 0] for spec in specs for n, kw in spec)
    assert any(kw.get("bias") is False for spec in specs for _, kw in spec)


@pytest.mark.parametrize("seed", range(4))
def test_pytorch_initialised_weights_come_back(seed, tmp_path):
    torch = pytest.importorskip("torch")
    import safetensors.torch

    model, input_shape = random_model(seed)
    torch.manual_seed(seed)
    torch_model = torch.nn.Sequential(*(getattr(torch.nn, n)(**kw) for n, kw in pytorch_spec(model))).eval()
    safetensors.torch.save_file(torch_model.state_dict(), tmp_path / "torch.safetensors")
    fresh = from_spec(json.loads(json.dumps(model.spec()))).eval()  # same architecture, other weights
    loaded, _ = load_safetensors(tmp_path / "torch.safetensors", fresh)
    x = np.random.default_rng(seed).random((7, *input_shape), dtype=np.float32)
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    assert close(loaded(x), expected, 1e-5) and not close(model(x), expected, 1e-2)


def test_bfloat16_and_float16_from_pytorch_convert_exactly(tmp_path):
    torch = pytest.importorskip("torch")
    import safetensors.torch

    model, _ = random_model(1)
    torch_model = torch.nn.Sequential(*(getattr(torch.nn, n)(**kw) for n, kw in pytorch_spec(model)))
    for torch_dtype in (torch.bfloat16, torch.float16):
        state = {k: v.to(torch_dtype) for k, v in torch_model.state_dict().items()}
        safetensors.torch.save_file(state, tmp_path / "half.safetensors")
        loaded, _ = load_safetensors(tmp_path / "half.safetensors", model)
        assert all(np.array_equal(loaded.state_dict()[k], v.float().numpy()) for k, v in state.items())


def test_pytorch_pickles_are_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "marker"
    trap = pickle.dumps(Trap(str(marker)), protocol=2)
    for name in ("weights.pt", "weights.pth", "weights.safetensors", "weights.bin"):
        (tmp_path / name).write_bytes(trap)
        user_error(load_safetensors, tmp_path / name, words=(name, "does not read PyTorch pickles", "save_file"))
    assert not marker.exists()
    pickle.loads(trap)  # the control: the trap is live
    assert marker.exists()


def test_torch_save_files_are_refused_by_content(tmp_path):
    torch = pytest.importorskip("torch")
    state = torch.nn.Linear(2, 2).state_dict()
    torch.save(state, tmp_path / "zip.safetensors")
    torch.save(state, tmp_path / "legacy.safetensors", _use_new_zipfile_serialization=False)
    for name in ("zip.safetensors", "legacy.safetensors"):
        user_error(load_safetensors, tmp_path / name, words=(name, "does not read PyTorch pickles"))


# ------------------------------------------------------------------------------------------ bad files


def test_missing_file_or_a_folder(tmp_path):
    user_error(load_safetensors, tmp_path / "nowhere.safetensors", words=("not found", "nowhere.safetensors"))
    user_error(load_safetensors, tmp_path, words=(tmp_path, "is a folder"))


def test_every_truncation_is_a_clear_error(tmp_path):
    model = nc.Sequential(nc.Conv2d(1, 2, 2), nc.Flatten(), nc.Linear(8, 2))
    with open(save_safetensors(model, tmp_path / "w.safetensors", (1, 3, 3)), "rb") as f:
        data = f.read()
    header_end = 8 + struct.unpack("<Q", data[:8])[0]
    cut = tmp_path / "cut.safetensors"
    for size in sorted(
        set(range(0, len(data), 5)) | {1, 8, 9, header_end - 1, header_end, header_end + 1, len(data) - 1}
    ):
        cut.write_bytes(data[:size])
        message = user_error(read_safetensors, cut, words=(cut,))
        assert any(word in message for word in ("truncated", "too short", "is empty")), (size, message)


@pytest.mark.parametrize("kind", ["random bytes", "png", "npz", "npy", "json text", "onnx", "empty"])
def test_foreign_files_are_named(kind, tmp_path):
    path = tmp_path / f"foreign.{kind.split()[0]}"
    if kind == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(300))
    elif kind == "png":
        from PIL import Image

        Image.new("L", (4, 4)).save(path, format="PNG")
    elif kind == "npz":
        with open(path, "wb") as f:
            np.savez(f, a=np.zeros(3))
    elif kind == "npy":
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
    elif kind == "json text":
        path.write_text('{"0.weight": [1, 2]}')
    elif kind == "onnx":
        export_onnx(named_model("linear without bias")[0], path, (1, 9, 9), overwrite=True)
    else:
        path.write_bytes(b"")
    word = {"png": "PNG", "npz": ".npz", "npy": ".npy", "empty": "is empty"}.get(kind, "safetensors file")
    user_error(load_safetensors, path, words=(path, word))


ENTRY = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
LIES = {
    "offsets past the end": ({"w": ENTRY}, 4, "truncated"),
    "overlap": ({"a": ENTRY, "b": {**ENTRY, "data_offsets": [4, 12]}}, 12, "overlaps"),
    "gap": ({"a": ENTRY, "b": {**ENTRY, "data_offsets": [12, 20]}}, 20, "gap at byte 8"),
    "byte count": ({"w": {**ENTRY, "shape": [3]}}, 8, "needs 12"),
    "huge shape": ({"w": {**ENTRY, "shape": [2**40, 2**40]}}, 8, "bad shape"),
    "shape numpy cannot hold": ({"w": {**ENTRY, "shape": [0, 2**63]}}, 0, "bad shape"),
    "too many dimensions": ({"w": {**ENTRY, "shape": [1] * 71}}, 8, "bad shape"),
    "empty, but too big to hold": ({"w": {**ENTRY, "shape": [0, 2**39, 2**39]}}, 0, "bad shape"),
    "stray bytes": ({"w": ENTRY}, 12, "4 stray bytes"),
    "reversed offsets": ({"w": {**ENTRY, "data_offsets": [8, 0]}}, 8, "data_offsets"),
    "float offsets": ({"w": {**ENTRY, "data_offsets": [0.0, 8.0]}}, 8, "data_offsets"),
    "no offsets": ({"w": {"dtype": "F32", "shape": [2]}}, 8, "data_offsets"),
    "negative shape": ({"w": {**ENTRY, "shape": [-2]}}, 8, "shape"),
    "bool shape": ({"w": {**ENTRY, "shape": [True, 2]}}, 8, "shape"),
    "integer dtype": ({"w": {**ENTRY, "dtype": "I32"}}, 8, "'I32'"),
    "unknown dtype": ({"w": {**ENTRY, "dtype": "F8_E4M3"}}, 8, "'F8_E4M3'"),
    "metadata not strings": ({"__metadata__": {"a": 1}, "w": ENTRY}, 8, "__metadata__"),
    "not json": (b"{not json", 0, "not valid JSON"),
    "nan": (b'{"__metadata__": {"a": NaN}}', 0, "not valid JSON"),
    "deep nesting": (b'{"a": ' + b"[" * 100_000, 0, "not valid JSON"),
    "duplicate key": (
        b'{"w": ' + json.dumps(ENTRY).encode() + b', "w": ' + json.dumps(ENTRY).encode() + b"}",
        8,
        "duplicate key 'w'",
    ),
    "not utf-8": (b'{"\xff": 1}', 0, "UTF-8"),
    "a json list": (b"[1]", 0, "not a safetensors file"),
}


@pytest.mark.parametrize("lie", LIES)
def test_headers_that_lie_are_caught(lie, tmp_path):
    header, size, word = LIES[lie]
    path = safetensors_file(tmp_path / "lie.safetensors", header, bytes(size))
    user_error(read_safetensors, path, words=(path, word))


def test_header_length_beyond_the_file(tmp_path):
    path = tmp_path / "long.safetensors"
    path.write_bytes(struct.pack("<Q", 1000) + b'{"__metadata__": {}}')
    user_error(read_safetensors, path, words=(path, "header length 1000"))


def test_our_encoder_agrees_with_the_reader_on_awkward_names():
    data = encode_safetensors({"ünï cödé": np.ones((0, 3), np.float32), "x": np.arange(3.0)}, {"k": "v\n"})
    assert len(data) % 8 == 0 and safetensors.numpy.load(data)["x"].tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(UserError):
        encode_safetensors({"i": np.arange(3)})


# -------------------------------------------------------------------------------------- writing files


@pytest.mark.parametrize("name", ["m.onnx", "m.safetensors"])
def test_an_existing_output_is_kept_unless_overwrite(name, tmp_path):
    model, input_shape = named_model("pool with padding")
    path = tmp_path / name
    path.write_bytes(b"precious")
    user_error(export_model, model, path, input_shape, words=(path, "already exists", "--overwrite"))
    assert path.read_bytes() == b"precious"
    export_model(model, path, input_shape, overwrite=True)
    assert path.read_bytes() != b"precious" and sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("name", ["m.onnx", "m.safetensors"])
def test_a_failed_write_leaves_no_output_and_no_temporary(name, tmp_path, monkeypatch):
    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    model, input_shape = named_model("pool with padding")
    user_error(export_model, model, tmp_path / name, input_shape, words=(tmp_path / name, "No space left"))
    assert list(tmp_path.iterdir()) == []


def test_the_format_comes_from_the_extension(tmp_path):
    model, input_shape = named_model("linear without bias")
    export_model(model, tmp_path / "a.ONNX", input_shape)
    export_model(model, tmp_path / "a.safetensors", input_shape)
    assert onnx.load(tmp_path / "a.ONNX").graph.node[0].op_type == "Flatten"
    assert load_safetensors(tmp_path / "a.safetensors")[1]["num_classes"] == 4
    for name, word in (("a.pt", "'.pt'"), ("a.txt", "'.txt'"), ("noext", "without an extension")):
        user_error(export_model, model, tmp_path / name, input_shape, words=(name, word, ".onnx or .safetensors"))
    (tmp_path / "folder.onnx").mkdir()
    user_error(export_model, model, tmp_path / "folder.onnx", input_shape, overwrite=True, words=("is a folder",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ONNX", "a.safetensors", "folder.onnx"]


# ---------------------------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("export-cli") / "run"
    return train_run(out, "--preset", "seed", "--limit-train", 200, "--limit-test", 50)


def test_cli_export_import_round_trip(seed_run, tmp_path, capsys):
    from nanocnn.cli import main

    onnx_path, st_path = tmp_path / "m.onnx", tmp_path / "m.safetensors"
    assert main(["export", str(seed_run), str(onnx_path)]) == 0 and main(["export", str(seed_run), str(st_path)]) == 0
    assert capsys.readouterr().out.split() == [str(onnx_path), str(st_path)]
    model = nc.load(seed_run / "model.npz")[0].eval()
    x = np.random.default_rng(0).random((7, 1, 28, 28), dtype=np.float32)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert np.abs(session.run(None, {session.get_inputs()[0].name: x})[0] - model(x)).max() < 1e-4
    for extra in ([], ["--preset", "seed"], ["--like", str(seed_run)]):
        out = tmp_path / f"imported{len(extra)}{extra[:1]}.npz"
        assert main(["import", str(st_path), str(out), *extra]) == 0, capsys.readouterr().err
        assert np.array_equal(nc.load(out)[0].eval()(x), model(x))
    assert main(["evaluate", str(st_path), "--limit-test", "50"]) == 0  # nanocnn's own safetensors is a MODEL too
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("test accuracy: 0.")


def test_cli_export_and_import_errors(seed_run, tmp_path, capsys):
    from nanocnn.cli import main

    existing = tmp_path / "m.onnx"
    existing.write_bytes(b"keep me")
    (tmp_path / "w.pth").write_bytes(pickle.dumps({"weight": 1}))
    st_path = tmp_path / "m.safetensors"
    assert main(["export", str(seed_run), str(st_path)]) == 0
    capsys.readouterr()
    for argv, message in [
        (["export", str(seed_run), str(existing)], "already exists; pass --overwrite"),
        (["export", str(seed_run), str(tmp_path / "m.txt")], "must end in .onnx or .safetensors"),
        (["export", str(tmp_path / "none.npz"), str(tmp_path / "x.onnx")], "model file not found"),
        (["import", str(tmp_path / "w.pth"), str(tmp_path / "x.npz")], "does not read PyTorch pickles"),
        (["evaluate", str(tmp_path / "w.pth")], "does not read PyTorch pickles"),
        (["import", str(st_path), str(tmp_path / "x.npz"), "--preset", "default"], "missing keys"),
        (["import", str(st_path), str(tmp_path / "x.txt")], "must end in .npz"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and message in err, (argv, err)
    assert (
        existing.read_bytes() == b"keep me" and not (tmp_path / "x.npz").exists() and not (tmp_path / "x.onnx").exists()
    )
