"""Residual blocks, and the new layers in whole networks: gradients through both paths, shapes checked early,
nesting, save and load, threads (batch norm's parts and running statistics), ONNX and safetensors."""

import numpy as np
import pytest

import nanocnn as nc
from helpers import check_layer_gradients, numerical_grad, rel_error
from nanocnn.parallel import DataParallel
from nanocnn.train import train_step


def block(C, F, rng, stride=1, dtype=np.float64):
    conv = nc.Conv2d(C, F, 3, stride=stride, padding=1, bias=False, dtype=dtype, rng=rng)  # BN cancels a bias
    layers = [conv, nc.BatchNorm2d(F, dtype=dtype)]
    return nc.Sequential(*layers, nc.ReLU(), nc.Conv2d(F, F, 3, padding=1, dtype=dtype, rng=rng))


def resnet(rng, dtype=np.float32):
    """conv, BN, ReLU, two residual blocks (identity, then 1x1 stride-2 shortcut, one nested), avg pools, linear."""
    inner = nc.Residual(nc.Sequential(nc.Conv2d(8, 8, 3, padding=1, dtype=dtype, rng=rng), nc.ReLU()))
    return nc.Sequential(
        nc.Conv2d(1, 8, 3, padding=1, bias=False, dtype=dtype, rng=rng),
        nc.BatchNorm2d(8, dtype=dtype),
        nc.ReLU(),
        nc.Residual(nc.Sequential(block(8, 8, rng, dtype=dtype), inner)),
        nc.Residual(block(8, 12, rng, 2, dtype), nc.Conv2d(8, 12, 1, stride=2, dtype=dtype, rng=rng)),
        nc.AvgPool2d(2),
        nc.AdaptiveAvgPool2d(1),
        nc.Flatten(),
        nc.Linear(12, 5, dtype=dtype, rng=rng),
    )


def test_a_residual_block_passes_the_finite_difference_check_through_both_paths(rng):
    for shortcut in (None, nc.Conv2d(3, 4, 1, stride=2, dtype=np.float64, rng=rng)):
        F, stride = (3, 1) if shortcut is None else (4, 2)
        layer = nc.Residual(block(3, F, rng, stride), shortcut)
        check_layer_gradients(layer, rng.standard_normal((2, 3, 6, 6)), rng)


def test_a_whole_network_with_every_new_layer_against_finite_differences(rng):
    model = resnet(rng, np.float64).train()
    x, y = rng.standard_normal((3, 1, 8, 8)), rng.integers(0, 5, 3)
    loss = lambda: nc.softmax_cross_entropy(model(x), y)[0]  # noqa: E731
    model.zero_grad()
    dx = model.backward(nc.softmax_cross_entropy(model(x), y)[1])
    assert rel_error(dx, numerical_grad(loss, x)) < 1e-6
    for name, p in model.named_parameters():
        assert rel_error(p.grad, numerical_grad(loss, p.data)) < 1e-6, name


def test_shapes_that_cannot_add_up_are_refused_in_one_line(rng):
    with pytest.raises(nc.UserError, match=r"the block gives \(16, 32, 32\) but the shortcut \(8, 32, 32\)"):
        nc.Residual(nc.Conv2d(8, 16, 3, padding=1))  # known at construction: the conv's channels
    with pytest.raises(nc.UserError, match=r"the block gives \(4, 16, 16\) but the shortcut \(4, 32, 32\)"):
        nc.Residual(nc.Sequential(nc.ReLU(), nc.Conv2d(4, 4, 3, stride=2, padding=1)))
    late = nc.Residual(nc.MaxPool2d(2))  # nothing says the channels: found at the first forward
    with pytest.raises(nc.UserError, match=r"the block gives \(3, 2, 2\) but the shortcut \(3, 4, 4\)"):
        late(rng.standard_normal((1, 3, 4, 4)))
    with pytest.raises(nc.UserError, match="block must be a nanocnn layer"):
        nc.Residual(lambda x: x)


def test_nested_residuals_save_load_and_rebuild_with_pytorchs_nested_names(tmp_path, rng):
    model = resnet(rng)
    x = rng.random((6, 1, 8, 8), dtype=np.float32)
    for _ in range(2):  # move the running statistics off their start
        train_step(model, x, rng.integers(0, 5, 6))
    names = list(model.state_dict())
    assert "3.block.1.block.0.weight" in names and "4.shortcut.weight" in names
    assert "4.block.1.running_var" in names and "1.num_batches_tracked" in names
    nc.save(model, tmp_path / "m.npz")
    loaded, _ = nc.load(tmp_path / "m.npz")
    assert np.array_equal(loaded.eval()(x), model.eval()(x))
    assert all(np.array_equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    nc.save_safetensors(model, tmp_path / "m.safetensors", (1, 8, 8))
    back, _ = nc.load_safetensors(tmp_path / "m.safetensors")
    assert np.array_equal(back.eval()(x), model(x)) and int(back.state_dict()["1.num_batches_tracked"]) == 2


@pytest.mark.parametrize("n", [64, 100])
def test_batch_norm_in_parts_gives_the_same_weights_and_statistics_on_one_two_or_three_threads(n):
    runs = []
    for threads in (1, 2, 3):
        rng = np.random.default_rng(5)
        model = resnet(rng)
        opt = nc.Adam(model.parameters(), lr=1e-2)
        x, y = rng.random((n, 1, 8, 8), dtype=np.float32), rng.integers(0, 5, n)
        with DataParallel(model.train(), threads) as parallel:
            for _ in range(3):
                parallel.forward_backward(train_step, x, y)
                opt.step()
                opt.zero_grad()
        runs.append(model.state_dict())
    for other in runs[1:]:
        assert all(np.array_equal(runs[0][k], other[k]) for k in runs[0])
    assert int(runs[0]["1.num_batches_tracked"]) == 3 and runs[0]["1.running_var"].std() > 0


def test_every_new_layer_exports_to_onnx_and_runs_there_like_nanocnn(tmp_path, rng):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    model = resnet(rng)
    x = rng.random((16, 1, 8, 8), dtype=np.float32)
    for _ in range(3):
        train_step(model, x, rng.integers(0, 5, 16))
    model.eval()
    path = nc.export_onnx(model, tmp_path / "m.onnx", (1, 8, 8))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"input": x})
    assert rel_error(logits, model(x)) < 1e-5
    import onnx

    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert {"BatchNormalization", "AveragePool", "GlobalAveragePool", "Add", "Conv", "Gemm"} <= ops


def test_summary_lists_the_layers_inside_residual_blocks_under_their_state_dict_names(rng):
    model = resnet(rng)
    lines = model.summary((1, 8, 8)).splitlines()
    rows = {line.split(":")[0].strip(): line for line in lines if ":" in line}
    weights = {k.rsplit(".", 1)[0] for k in model.state_dict() if k.endswith("weight")}
    assert weights <= rows.keys() and {"3.block.1.block.0", "4.shortcut"} <= rows.keys()
    assert "Residual: block(x) + shortcut(x)" in rows["4"] and "Residual: block(x) + identity(x)" in rows["3"]
    top = [line for line in lines if line[:1].isdigit()]
    assert len(top) == len(model.layers)
    params = sum(int(line.split()[-2].replace(",", "")) for line in top)
    macs = sum(int(line.split()[-1].replace(",", "")) for line in top)
    assert params == sum(p.data.size for p in model.parameters())
    assert lines[-1].split()[-2:] == [f"{params:,}", f"{macs:,}"]
    assert rows["4"].split()[-2] == f"{sum(p.data.size for p in model[4].parameters()):,}"
