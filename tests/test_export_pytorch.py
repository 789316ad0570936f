"""safetensors into PyTorch and back: the file rebuilds the model in torch.nn (PyTorch optional: skips without it)."""

import json
import pickle

import numpy as np
import pytest
from safetensors import safe_open

from exporting import Trap, close, random_model, user_error
from nanocnn.io.export import (
    load_safetensors,
    pytorch_spec,
    save_safetensors,
)
from nanocnn.nn import from_spec


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


def torch_builder(torch):
    """The README's rebuild of a file's "pytorch" metadata, with its Residual module (torch.nn has none): the
    README's own code, run up to the line that opens the reader's file, so the README cannot drift from this."""
    from test_readme import python_blocks

    block = next(b for b in python_blocks() if "def build(name, kwargs):" in b)
    namespace = {}
    exec(compile(block.split("\nspec = ", 1)[0], "README.md", "exec"), namespace)
    return namespace["build"]


def test_batch_norm_pooling_and_residual_blocks_round_trip_with_pytorch(tmp_path):
    """Into PyTorch from the file alone (running statistics included), and PyTorch's trained weights back."""
    torch = pytest.importorskip("torch")
    import safetensors.torch

    from test_residual import resnet

    rng = np.random.default_rng(3)
    model = resnet(rng)
    x = rng.random((9, 1, 8, 8), dtype=np.float32)
    from nanocnn.train import train_step

    for _ in range(2):
        train_step(model, x, rng.integers(0, 5, 9))
    path = save_safetensors(model.eval(), tmp_path / "m.safetensors", (1, 8, 8))
    spec = json.loads(safe_open(path, "pt").metadata()["pytorch"])
    theirs = torch_builder(torch)("Sequential", spec)
    theirs.load_state_dict(safetensors.torch.load_file(path))  # strict: every name and shape the same
    theirs.eval()
    with torch.no_grad():
        assert close(theirs(torch.from_numpy(x)).numpy(), model(x), 1e-5)
        theirs.train()(torch.from_numpy(x))  # move PyTorch's own running statistics, then bring them back
    safetensors.torch.save_file(theirs.eval().state_dict(), tmp_path / "torch.safetensors")
    fresh = from_spec(json.loads(json.dumps(model.spec())))
    loaded, _ = load_safetensors(tmp_path / "torch.safetensors", fresh)
    assert int(loaded.state_dict()["1.num_batches_tracked"]) == 3
    with torch.no_grad():
        assert close(loaded.eval()(x), theirs(torch.from_numpy(x)).numpy(), 1e-5)
