"""ONNX export: onnxruntime runs the file like nanocnn (one thread, float32, batches 1 and 7), and refusals."""

import json
import sys

import numpy as np
import onnx
import pytest

import nanocnn as nc
from exporting import NAMED, SEEDS, Scale, close, named_model, random_model, run_onnx, user_error
from nanocnn.io.export import (
    export_model,
    export_onnx,
    save_safetensors,
)
from nanocnn.nn import from_spec


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
    stages = ["Conv", "BatchNormalization", "Relu"] + ["Conv", "MaxPool", "BatchNormalization", "Relu"] * 2
    assert [n.op_type for n in proto.graph.node] == stages + ["Flatten", "Gemm"]
    counters = {k for k in model.state_dict() if k.endswith("num_batches_tracked")}  # not needed at inference
    assert sorted(i.name for i in proto.graph.initializer) == sorted(set(model.state_dict()) - counters)


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
