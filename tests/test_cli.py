"""The command line as a user meets it: train, resume, evaluate, predict, summary, and clean errors."""

import json
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import nanocnn as nc
import nanocnn.io
from helpers import random_dataset, write_idx_folder, write_npz
from nanocnn.cli import main

SMALL = ["--limit-train", "300", "--limit-test", "100", "--no-progress"]


def run_cli(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def cli_process(*argv, **kwargs):
    """The installed command, as a whole process (python -m nanocnn)."""
    return subprocess.run(
        [sys.executable, "-m", "nanocnn", *map(str, argv)], capture_output=True, text=True, timeout=300, **kwargs
    )


def test_train_seed_preset_writes_a_run(tmp_path, capsys):
    status, out, err = run_cli(capsys, "train", "--preset", "seed", *SMALL, "--out", tmp_path / "run")
    assert status == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("config: preset=seed") and "batch_size=1" in lines[0] and "lr=0.0003" in lines[0]
    assert lines[-1].startswith("test accuracy: 0.") and len(lines[-1]) == len("test accuracy: 0.0000")
    assert sorted(os.listdir(tmp_path / "run")) == ["config.json", "metrics.csv", "model.npz"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert (tmp_path / "run" / "model.npz").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    assert json.loads((tmp_path / "run" / "config.json").read_text())["preset"] == "seed"
    model, meta, arrays = nanocnn.io.read(tmp_path / "run" / "model.npz")
    assert meta["epoch"] == 1 and meta["input_shape"] == [1, 28, 28] and "optim/steps" in arrays
    assert float(lines[-1].split()[-1]) == pytest.approx(meta["metrics"][-1]["test_acc"], abs=5e-5)


@pytest.mark.slow
def test_same_seed_gives_bit_identical_weights(tmp_path, capsys):
    for name in ("a", "b"):
        assert run_cli(capsys, "train", "--epochs", "1", *SMALL, "--out", tmp_path / name)[0] == 0
    a, b = (nc.load(tmp_path / n / "model.npz")[0].state_dict() for n in "ab")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert run_cli(capsys, "train", "--epochs", "1", "--seed", "1", *SMALL, "--out", tmp_path / "c")[0] == 0
    c = nc.load(tmp_path / "c" / "model.npz")[0].state_dict()
    assert not np.array_equal(a["0.weight"], c["0.weight"])


def test_an_existing_run_is_never_overwritten_unless_asked(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(capsys, "train", "--preset", "seed", *SMALL, "--out", out)[0] == 0
    before = {f: (out / f).read_bytes() for f in os.listdir(out)}
    status, _, err = run_cli(capsys, "train", "--preset", "seed", *SMALL, "--out", out)
    assert status == 2 and "already exists" in err and "--overwrite" in err
    assert {f: (out / f).read_bytes() for f in os.listdir(out)} == before
    assert run_cli(capsys, "train", "--preset", "seed", *SMALL, "--lr", "0.001", "--out", out, "--overwrite")[0] == 0
    assert json.loads((out / "config.json").read_text())["lr"] == 0.001


@pytest.mark.slow
def test_resume_after_sigkill_in_the_second_epoch_is_bit_identical_even_on_other_threads(tmp_path):
    # the default has batch norm (running statistics) and --augment draws from the run's generator: both resume
    args = ["train", "--epochs", "3", "--limit-train", "2000", "--limit-test", "200", "--augment", "--no-progress"]
    assert cli_process(*args, "--threads", "2", "--out", tmp_path / "full").returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "nanocnn", *args, "--threads", "2", "--out", str(tmp_path / "cut")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    metrics = tmp_path / "cut" / "metrics.csv"
    deadline = time.time() + 120
    while not (metrics.exists() and len(metrics.read_text().splitlines()) == 2) and time.time() < deadline:
        time.sleep(0.01)  # epoch 1's checkpoint is written: we are in epoch 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and nc.load(tmp_path / "cut" / "model.npz")[1]["epoch"] == 1
    # resumed on one thread: --threads changes the speed, never the numbers
    resumed = cli_process("train", "--resume", "--threads", "1", "--out", tmp_path / "cut", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    full, cut = (nc.load(tmp_path / d / "model.npz") for d in ("full", "cut"))
    assert all(np.array_equal(full[0].state_dict()[k], cut[0].state_dict()[k]) for k in full[0].state_dict())
    assert full[1]["metrics"] == [dict(m, seconds=f["seconds"]) for m, f in zip(cut[1]["metrics"], full[1]["metrics"])]
    assert resumed.stdout.strip().splitlines()[-1] == f"test accuracy: {full[1]['metrics'][-1]['test_acc']:.4f}"


def test_resume_refuses_changed_options(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(capsys, "train", "--preset", "seed", *SMALL, "--out", out)[0] == 0
    status, _, err = run_cli(capsys, "train", "--resume", "--out", out, "--lr", "0.5")
    assert (
        status == 2
        and err.strip()
        == "error: --resume: --lr 0.5 differs from the run's 0.0003; only --epochs and --threads may change"
    )


def test_evaluate_predict_and_summary(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(capsys, "train", "--preset", "seed", *SMALL, "--out", out)[0] == 0
    status, text, err = run_cli(capsys, "evaluate", out / "model.npz", "--limit-test", "100")
    assert status == 0, err
    lines = text.strip().splitlines()
    assert "per-class accuracy:" in lines and lines[-1].startswith("test accuracy: 0.")
    matrix = [
        line.split()[1:]
        for line in lines[lines.index("confusion matrix (rows: true class, columns: predicted):") + 2 : -1]
    ]
    assert len(matrix) == 10 and sum(int(v) for row in matrix for v in row) == 100
    from PIL import Image

    digit = np.load(nc.data.bundled_path())["testimages"][0]  # a 7, drawn dark on light and larger
    Image.fromarray(255 - np.kron(digit, np.ones((3, 3), np.uint8))).save(tmp_path / "seven.png")
    status, text, err = run_cli(capsys, "predict", out, tmp_path / "seven.png")
    assert status == 0, err
    assert text.startswith(f"{tmp_path / 'seven.png'}: ") and text.count("(") == 3
    for name, shade in (("white", 255), ("black", 0), ("grey", 128)):  # no ink: no guess, as on the page
        Image.fromarray(np.full((40, 30), shade, np.uint8)).save(tmp_path / f"{name}.png")
    status, text, err = run_cli(
        capsys, "predict", out, *(tmp_path / f"{name}.png" for name in ("white", "seven", "black", "grey"))
    )
    lines = text.strip().splitlines()
    assert status == 0 and len(lines) == 4 and lines[1].count("(") == 3, err
    assert lines[0] == f"{tmp_path / 'white.png'}: blank (no ink once prepared): no prediction"
    assert all(line.endswith(": blank (no ink once prepared): no prediction") for line in lines[2:])
    status, text, _ = run_cli(capsys, "summary", "--preset", "seed")
    assert status == 0 and "Conv2d(1, 16, kernel_size=8)" in text and "(8, 9, 9)" in text and "total" in text
    status, text, _ = run_cli(capsys, "summary", out)
    assert status == 0 and "Linear(648, 10)" in text


def test_a_pickle_bomb_model_is_refused_without_running(tmp_path, capsys):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.npz"
    np.savez(path, __nanocnn__=np.array([Payload()], dtype=object))
    assert b"pwned" in path.read_bytes()  # the file really would run code if unpickled
    status, _, err = run_cli(capsys, "evaluate", path)
    assert status == 2 and "pickled objects; refusing" in err and not marker.exists()
    with open(tmp_path / "plain.pkl", "wb") as f:
        pickle.dump(Payload(), f)
    status, _, err = run_cli(capsys, "evaluate", tmp_path / "plain.pkl")
    assert status == 2 and not marker.exists()


@pytest.mark.slow
def test_other_image_sizes_and_formats_train_without_code_changes(tmp_path, capsys, rng):
    arrays = random_dataset(rng, n_train=120, n_test=40, shape=(17, 13))
    for data in (write_npz(tmp_path / "d.npz", *arrays), write_idx_folder(tmp_path / "idx", *arrays, gz=True)):
        status, out, err = run_cli(
            capsys,
            "train",
            "--data",
            data,
            "--epochs",
            "3",
            "--batch-size",
            "8",
            "--no-progress",
            "--out",
            tmp_path / f"run-{data.name}",
        )
        assert status == 0, err
        assert "of shape (1, 17, 13), 3 classes" in out and float(out.split()[-1]) > 0.6


def bad_invocations(tmp):
    corrupt = tmp / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 garbage")
    text = tmp / "note.txt"
    text.write_text("hello")
    return [
        (["train", "--batch-size", "0"], "batch-size must be an integer >= 1, got 0"),
        (["train", "--lr", "0"], "lr must be a finite number > 0, got 0.0"),
        (["train", "--lr", "nan"], "lr must be a finite number > 0, got nan"),
        (["train", "--lr", "fast"], "must be a number, got 'fast'"),
        (["train", "--epochs", "0"], "epochs must be an integer >= 1, got 0"),
        (["train", "--limit-train", "-5"], "limit-train must be an integer >= 1, got -5"),
        (["train", "--preset", "huge"], "unknown preset 'huge'; choose one of default, best, classic, seed"),
        (["train", "--optimizer", "rmsprop"], "unknown optimizer 'rmsprop'; choose one of sgd, adam"),
        (["train", "--momentum", "1"], "momentum must be a finite number >= 0 and < 1, got 1.0"),
        (["train", "--threads", "0"], "threads must be an integer >= 1, got 0"),
        (["evaluate", tmp / "missing.npz", "--threads", "-2"], "threads must be an integer >= 1, got -2"),
        (["train", "--data", tmp / "missing.npz"], "data not found"),
        (["train", "--data", corrupt], "is not a readable .npz archive"),
        (["train", "--data", text], "is not a readable .npz archive"),
        (["train", "--resume", "--out", tmp / "nothing"], "has no model.npz to resume from"),
        (["train", "--preset", "seed", "--limit-train", "50", "--out", text / "run"], "cannot create run folder"),
        (["train", "--bogus"], "unrecognized arguments: --bogus"),
        (["evaluate", tmp / "missing.npz"], "model file not found"),
        (["evaluate", corrupt], "is not a readable .npz archive"),
        (["predict", tmp / "missing.npz", text], "model file not found"),
        (["summary", "--preset", "nope"], "unknown preset 'nope'"),
        (["plot", "filters", tmp / "missing.npz"], "model file not found"),
        ([], "the following arguments are required: command"),
    ]


def test_bad_input_gets_one_line_and_status_2(tmp_path, capsys):
    for argv, message in bad_invocations(tmp_path):
        status, out, err = run_cli(capsys, *argv)
        assert status == 2, argv
        assert err.count("\n") == 1 and err.startswith("error: ") and message in err, (argv, err)
        assert "Traceback" not in err
    assert not (tmp_path / "runs").exists() and not os.path.exists("runs/missing")


def test_errors_with_a_model_and_data_that_do_not_fit(tmp_path, capsys, rng):
    out = tmp_path / "run"
    assert run_cli(capsys, "train", "--preset", "seed", *SMALL, "--out", out)[0] == 0
    other = write_npz(tmp_path / "other.npz", *random_dataset(rng, shape=(12, 10)))
    status, _, err = run_cli(capsys, "evaluate", out, "--data", other)
    assert status == 2 and "the model takes images of shape (1, 28, 28) (C, H, W), the data has (1, 12, 10)" in err
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    status, _, err = run_cli(capsys, "predict", out, tmp_path / "broken.png")
    assert status == 2 and "cannot read image" in err and err.count("\n") == 1
    tiny = write_npz(tmp_path / "tiny.npz", *random_dataset(rng, shape=(3, 3)))
    status, _, err = run_cli(capsys, "train", "--data", tiny, "--out", tmp_path / "t", "--no-progress")
    assert status == 2 and "MaxPool2d: kernel 2x2 is larger than the padded input 1x1" in err
    assert not (tmp_path / "t").exists()


def test_a_model_saved_without_its_input_shape_gets_a_clear_error(tmp_path, capsys):
    path = tmp_path / "bare.npz"
    nc.save(nc.Sequential(nc.Flatten(), nc.Linear(784, 10)), path)
    for argv in (["evaluate", path], ["predict", path, path], ["summary", path], ["plot", "confusion", path]):
        status, _, err = run_cli(capsys, *argv)
        assert status == 2 and "does not record its input shape and classes" in err and err.count("\n") == 1


def test_python_dash_m_and_exit_status_as_a_process(tmp_path):
    result = cli_process("train", "--lr", "-1", "--out", tmp_path / "x")
    assert result.returncode == 2 and result.stderr == "error: lr must be a finite number > 0, got -1.0\n"
    assert not (tmp_path / "x").exists()


def test_recorded_shapes_are_checked_and_only_training_checkpoints_resume(tmp_path, capsys):
    """A model file whose metadata lies (or was not written by train) gets one line, never a traceback."""
    bare = nc.Sequential(nc.Flatten(), nc.Linear(784, 10))
    cases = {
        "shape.npz": ({"input_shape": 5, "num_classes": 10}, "input_shape must be (C, H, W)"),
        "short.npz": ({"input_shape": [1, 28], "num_classes": 10}, "input_shape must be (C, H, W)"),
        "classes.npz": ({"input_shape": [1, 28, 28], "num_classes": "ten"}, "num_classes must be an integer"),
        "disagree.npz": ({"input_shape": [1, 28, 28], "num_classes": 3}, "num_classes is 3 but the model outputs 10"),
    }
    for name, (meta, message) in cases.items():
        nc.save(bare, tmp_path / name, meta=meta)
        for argv in (["evaluate", tmp_path / name], ["serve", tmp_path / name, "--port", "0"]):
            status, _, err = run_cli(capsys, *argv)
            assert status == 2 and message in err and err.count("\n") == 1, (argv, err)
    (tmp_path / "run").mkdir()
    nc.save(bare, tmp_path / "run" / "model.npz", meta={"input_shape": [1, 28, 28], "num_classes": 10})
    status, _, err = run_cli(capsys, "train", "--resume", "--out", tmp_path / "run")
    assert status == 2 and "is not a training checkpoint" in err
