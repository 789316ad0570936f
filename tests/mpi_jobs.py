"""What the MPI tests share: mpiexec (found or required), jobs of the CLI on loopback, and one-process references.

Needs mpi4py and the mpiexec of the same MPI (pip install '.[test]' brings both, with MPICH); the tests
that run MPI skip without them, unless NANOCNN_REQUIRE_MPI=1 (CI) turns the skip into a failure.
"""

import importlib.util
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import nanocnn as nc
import nanocnn.train.presets
from nanocnn.parallel.mpi import RANKS, launcher
from nanocnn.train import fit
from nanocnn.train.config import Config

SMALL = dict(limit_train=640, limit_test=200, epochs=2)  # the default: 5 batches of 128 (2 parts of 64) an epoch
LONG = dict(limit_train=1280, limit_test=200, epochs=3)  # long enough to stop a run inside its second epoch
TIMEOUT = 120

# Presets for tests only, registered by a script that then runs the CLI: one with Dropout drawing its masks
# from the run's own generator, one whose rank 1 raises in the middle of its second epoch.
PRESETS_CODE = """
import nanocnn as nc
from nanocnn.train.config import Config
from nanocnn.train.presets import PRESETS, Preset


def build_dropout(input_shape, num_classes, rng):
    C, H, W = input_shape
    return nc.Sequential(nc.Conv2d(C, 8, 5, padding=2, rng=rng), nc.ReLU(), nc.MaxPool2d(2), nc.Dropout(0.3, rng=rng),
                         nc.Flatten(), nc.Linear(8 * (H // 2) * (W // 2), num_classes, rng=rng))


class FailOnRank1(nc.Module):
    calls = 0

    def forward(self, x):
        from mpi4py import MPI

        FailOnRank1.calls += self.training
        if MPI.COMM_WORLD.Get_rank() == 1 and FailOnRank1.calls == 10:  # 7 batches an epoch: the 3rd of epoch 2
            raise RuntimeError("boom")
        return x

    def backward(self, grad_out, input_grad=True):
        return grad_out


def build_failing(input_shape, num_classes, rng):
    return nc.Sequential(FailOnRank1(), *build_dropout(input_shape, num_classes, rng).layers)


DEFAULTS = Config(epochs=2, batch_size=96, lr=3e-3, optimizer="adam")
PRESETS["dropout"] = Preset("dropout", "tests only", build_dropout, DEFAULTS)
PRESETS["failing"] = Preset("failing", "tests only", build_failing, DEFAULTS)
"""
SCRIPT = PRESETS_CODE + "\nimport sys\nfrom nanocnn.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def find_mpiexec():
    """The mpiexec beside this Python (the one of the mpich wheel, matching mpi4py), else the one on PATH."""
    return shutil.which("mpiexec", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))


def mpiexec_or_skip():
    """The mpiexec to run jobs with; skips without mpi4py and an mpiexec (fails under NANOCNN_REQUIRE_MPI=1)."""
    missing = (
        "mpi4py is not installed"
        if importlib.util.find_spec("mpi4py") is None
        else "no mpiexec found"
        if find_mpiexec() is None
        else None
    )
    if missing:
        if os.environ.get("NANOCNN_REQUIRE_MPI") == "1":
            pytest.fail(f"NANOCNN_REQUIRE_MPI=1 but {missing}: pip install '.[test]'")
        pytest.skip(f"{missing}: pip install '.[test]' (or '.[mpi]') to run the distributed tests")
    return find_mpiexec()


def options(settings):
    """dict(limit_train=640) -> ['--limit-train', '640']"""
    return [str(v) for k, value in settings.items() for v in (f"--{k.replace('_', '-')}", value)]


def mpi_command(mpiexec, n, *argv, script=None, launcher=()):
    program = [sys.executable, str(script)] if script else [sys.executable, "-m", "nanocnn"]
    return [mpiexec, *launcher, "-n", str(n), *program, "train", "--distributed", "--no-progress", *map(str, argv)]


def run_job(command, cwd, env=None, timeout=TIMEOUT):
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


REFERENCES = {}


def one_process(tmp_path_factory, **settings):
    """(state_dict, metrics, log lines) of the run in this one process (cached by settings)."""
    key = tuple(sorted(settings.items()))
    if key not in REFERENCES:
        lines = []
        out = tmp_path_factory.mktemp("reference")
        model, _, _ = fit(Config(**settings), out=out / "run", progress=False, log=lines.append)
        REFERENCES[key] = model.state_dict(), nc.load(out / "run" / "model.npz")[1]["metrics"], lines
    return REFERENCES[key]


def assert_same_run(folder, reference):
    """The run in ``folder`` ended with the reference's weights, bit for bit, and the same metrics (times aside)."""
    model, meta = nc.load(folder / "model.npz")
    state, metrics, _ = reference
    assert state.keys() == model.state_dict().keys()
    assert all(np.array_equal(state[k], model.state_dict()[k]) for k in state)
    assert [dict(m, seconds=0) for m in meta["metrics"]] == [dict(m, seconds=0) for m in metrics]


def job_processes(tag):
    """{pid: its rank, or None for the launcher's own processes} of those started with NANOCNN_TEST_JOB=tag."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = dict(v.decode(errors="replace").split("=", 1) for v in f.read().split(b"\0") if b"=" in v)
        except OSError:
            continue
        if environ.get("NANOCNN_TEST_JOB") == tag:
            found[int(pid)] = launcher(environ)[1] if any(k in environ for k in RANKS) else None
    return found


LINUX = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="finds the ranks' processes in /proc (Linux)")
