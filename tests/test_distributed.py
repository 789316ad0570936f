"""Training with MPI on loopback: `mpiexec -n K nanocnn train --distributed` ends bit-identical to one process,
on any number of ranks, with dropout, short batches, ranks without a part, and resume across process counts."""

import importlib.util
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

import nanocnn as nc
import nanocnn.train.presets
from mpi_jobs import (
    LINUX,
    LONG,
    PRESETS_CODE,
    SCRIPT,
    SMALL,
    TIMEOUT,
    assert_same_run,
    job_processes,
    mpi_command,
    one_process,
    options,
    run_job,
)
from nanocnn.parallel import World
from nanocnn.parallel.mpi import launcher
from nanocnn.train import fit
from nanocnn.train.config import Config


def test_share_gives_each_rank_a_contiguous_run_of_parts_lower_ranks_first():
    world = World()
    for size in range(1, 6):
        world.size = size
        for k in range(13):
            shares = [world.share(k, r) for r in range(size)]
            assert [i for s in shares for i in s] == list(range(k))
            lengths = [len(s) for s in shares]
            assert lengths == sorted(lengths, reverse=True) and max(lengths) - min(lengths) <= 1


def test_launcher_variables():
    assert launcher({}) == (0, 0) and launcher({"PMI_SIZE": "4", "PMI_RANK": "2"}) == (4, 2)
    assert launcher({"OMPI_COMM_WORLD_SIZE": "3"}) == (3, 0) and launcher({"SLURM_STEP_NUM_TASKS": "8"}) == (8, 0)
    assert launcher({"SLURM_NTASKS": "8"}) == (0, 0)  # a batch script itself is not a job step of 8


def test_plain_training_never_imports_mpi4py(tmp_path):
    argv = [
        "train",
        "--preset",
        "seed",
        "--limit-train",
        "40",
        "--limit-test",
        "20",
        "--no-progress",
        "--out",
        str(tmp_path / "run"),
    ]
    code = (
        "import sys, nanocnn, nanocnn.parallel.mpi, nanocnn.train; from nanocnn.cli import main; "
        f"assert main({argv!r}) == 0; assert 'mpi4py' not in sys.modules, 'mpi4py was imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_two_ranks_end_bit_identical_to_one_process_and_only_rank_0_writes(mpiexec, tmp_path, tmp_path_factory):
    reference = one_process(tmp_path_factory, **SMALL)
    done = run_job(mpi_command(mpiexec, 2, *options(SMALL), "--out", "run"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert_same_run(tmp_path / "run", reference)
    assert os.listdir(tmp_path) == ["run"]  # nothing written beside the run folder, by any rank
    curves = ["curves.png"] if importlib.util.find_spec("matplotlib") else []
    assert sorted(os.listdir(tmp_path / "run")) == sorted(["config.json", "metrics.csv", "model.npz", *curves])
    lines, log = done.stdout.splitlines(), reference[2]
    assert sum(line.startswith("config: ") for line in lines) == 1 and lines[0] == log[0] and lines[1] == log[1]
    threads = max(1, min(8, len(os.sched_getaffinity(0)) // 2))  # the CPUs shared by 2 ranks
    assert f"MPI: 2 ranks on 1 machine, {threads} thread{'s' * (threads > 1)} each" in lines[2]
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [e.rsplit(None, 2)[0] for e in epochs] == [e.rsplit(None, 2)[0] for e in log if e.startswith("epoch ")]
    assert lines[-1] == f"test accuracy: {reference[1][-1]['test_acc']:.4f}"
    assert not any(line.startswith(("error", "note", "Traceback")) for line in done.stderr.splitlines())


@pytest.mark.slow
def test_four_ranks_two_with_no_part_in_the_default_run_folder(mpiexec, tmp_path, tmp_path_factory):
    reference = one_process(tmp_path_factory, **SMALL)
    done = run_job(mpi_command(mpiexec, 4, *options(SMALL), "--threads", "1"), cwd=tmp_path)  # batches of 2 parts
    assert done.returncode == 0, done.stderr
    assert os.listdir(tmp_path) == ["runs"] and len(os.listdir(tmp_path / "runs")) == 1
    assert_same_run(tmp_path / "runs" / os.listdir(tmp_path / "runs")[0], reference)


@pytest.mark.slow
def test_batch_norm_residual_blocks_and_augmentation_on_two_ranks_end_as_in_one_process(
    mpiexec, tmp_path, tmp_path_factory
):
    """The best preset: batch norm (each part its own statistics, rank 0's first part's running statistics
    kept), residual blocks, global average pooling and --augment (drawn for the whole batch on every rank)."""
    settings = dict(preset="best", limit_train=448, limit_test=100, epochs=1)  # 3 batches of 2 parts, then one
    done = run_job(mpi_command(mpiexec, 2, *options(settings), "--out", "run"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    reference = one_process(tmp_path_factory, **settings)
    assert any(k.endswith("running_var") for k in reference[0]) and "augment=True" in reference[2][0]
    assert_same_run(tmp_path / "run", reference)


@pytest.mark.slow
@pytest.mark.parametrize("n, batch_size", [(2, 160), (3, 32)])
def test_a_short_last_batch_and_batches_of_one_part(mpiexec, tmp_path, tmp_path_factory, n, batch_size):
    """600 = 3 x 160 + 120: batches of 5 parts (3 on rank 0, 2 on rank 1, whose sum must not be formed apart from
    rank 0's), then one of 3 parts; batches of 32 are one part each, computed by rank 0 for all."""
    settings = dict(limit_train=600, limit_test=200, epochs=2, batch_size=batch_size)
    done = run_job(mpi_command(mpiexec, n, *options(settings), "--out", "run"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert_same_run(tmp_path / "run", one_process(tmp_path_factory, **settings))


@pytest.mark.slow
@pytest.mark.parametrize("n", [2, 3])
def test_dropout_draws_the_masks_of_one_process(mpiexec, tmp_path, tmp_path_factory, monkeypatch, n):
    """The model's Dropout draws from the run's one generator (also the batch order's): every rank must draw
    the same numbers, for the parts it computes and for those it does not."""
    monkeypatch.setattr(
        nanocnn.train.presets, "PRESETS", dict(nanocnn.train.presets.PRESETS)
    )  # the test presets, for now
    exec(PRESETS_CODE, {})
    settings = dict(preset="dropout", limit_train=600, limit_test=200)  # batches of 96: 3 parts, then 24 in one
    (tmp_path / "train.py").write_text(SCRIPT)
    done = run_job(
        mpi_command(mpiexec, n, *options(settings), "--out", "run", script=tmp_path / "train.py"), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert_same_run(tmp_path / "run", one_process(tmp_path_factory, **settings))


@pytest.mark.slow
@LINUX
def test_kill_9_of_one_rank_ends_the_job_and_one_process_resumes_bit_identically(mpiexec, tmp_path, tmp_path_factory):
    tag = uuid.uuid4().hex
    job = subprocess.Popen(
        mpi_command(mpiexec, 2, *options(LONG), "--out", "run"),
        cwd=tmp_path,
        env=dict(os.environ, NANOCNN_TEST_JOB=tag),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    metrics, deadline = tmp_path / "run" / "metrics.csv", time.time() + TIMEOUT
    while not (metrics.exists() and len(metrics.read_text().splitlines()) == 2) and time.time() < deadline:
        time.sleep(0.01)  # epoch 1's checkpoint is written: the ranks are in epoch 2
    ranks = {rank: pid for pid, rank in job_processes(tag).items() if rank is not None}
    assert sorted(ranks) == [0, 1]
    os.kill(ranks[1], signal.SIGKILL)
    killed = time.time()
    try:
        job.communicate(timeout=30)
    finally:
        job.kill()
    assert job.returncode != 0 and time.time() - killed < 30
    assert nc.load(tmp_path / "run" / "model.npz")[1]["epoch"] in (1, 2)  # the last checkpoint, intact
    resumed = subprocess.run(
        [sys.executable, "-m", "nanocnn", "train", "--resume", "--out", "run", "--no-progress"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(tmp_path / "run", one_process(tmp_path_factory, **LONG))


@pytest.mark.slow
def test_a_checkpoint_of_one_process_resumes_on_three_ranks(mpiexec, tmp_path, tmp_path_factory):
    class Stop(Exception):
        pass

    def stop_after_epoch_1(line):
        if line.startswith("epoch 1/"):  # logged just after epoch 1's checkpoint
            raise Stop

    with pytest.raises(Stop):
        fit(Config(**LONG), out=tmp_path / "run", progress=False, log=stop_after_epoch_1)
    done = run_job(mpi_command(mpiexec, 3, "--resume", "--out", "run"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert_same_run(tmp_path / "run", one_process(tmp_path_factory, **LONG))


@pytest.mark.parametrize(
    "rank_1, error",
    [
        (
            ["--data", "corrupt.npz"],
            "rank 1: data file corrupt.npz is not a readable .npz archive: File is not a zip file",
        ),
        (
            ["--lr", "0.01"],
            f"the ranks disagree: rank 1: --lr 0.01 (rank 0: {nanocnn.train.presets.PRESETS['default'].defaults.lr}); "
            "start every rank with the same options and data",
        ),
    ],
)
def test_a_rank_with_bad_data_or_other_options_stops_every_rank_in_one_line(mpiexec, tmp_path, rank_1, error):
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 garbage")
    rank = [sys.executable, "-m", "nanocnn", "train", "--distributed", *options(SMALL), "--out", "run"]
    done = run_job([mpiexec, "-n", "1", *rank, ":", "-n", "1", *rank, *rank_1], cwd=tmp_path)  # rank 1 sees others
    assert done.returncode == 2 and done.stderr.splitlines() == [f"error: {error}"]
    assert not (tmp_path / "run").exists() and done.stdout == ""  # stopped before anything was written
