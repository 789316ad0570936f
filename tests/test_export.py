"""Exporting as a user does: never overwriting, never half-written, the format from the extension, and the CLI."""

import os
import pickle

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import nanocnn as nc
from exporting import named_model, user_error
from helpers import train_run
from nanocnn.io.export import (
    export_model,
    load_safetensors,
)


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
