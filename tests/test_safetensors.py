"""safetensors: exact round trips, the safetensors package agrees both ways, and every bad file is a clear error."""

import json
import struct

import numpy as np
import pytest
import safetensors.numpy
from safetensors import safe_open

import nanocnn as nc
from exporting import named_model, random_model, safetensors_file, user_error
from nanocnn.io.export import (
    export_onnx,
    load_safetensors,
    save_safetensors,
)
from nanocnn.io.safetensors import encode_safetensors, read_safetensors
from nanocnn.validation import UserError


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
    user_error(load_safetensors, tmp_path / "int.safetensors", model, words=("int.safetensors", "1.weight", "int64"))
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

    class Twice(nc.Module):  # no torch.nn equivalent, deep inside a nested Sequential
        def forward(self, x):
            return 2 * x

    user_error(
        save_safetensors,
        nc.Sequential(nc.Sequential(nc.ReLU(), nc.Sequential(Twice()))),
        tmp_path / "w.safetensors",
        words=("layer 0.1.0 (Twice)", "no torch.nn equivalent"),
    )
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------- PyTorch


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
    with pytest.raises(UserError, match="float32, float64 or int64 only"):
        encode_safetensors({"i": np.arange(3, dtype=np.int32)})
    assert safetensors.numpy.load(encode_safetensors({"n": np.array(7, np.int64)}))["n"] == 7  # a counter


# -------------------------------------------------------------------------------------- writing files
