"""MPI jobs that go wrong: a rank with other data or options, an exception, kill -9, a launcher of another MPI; TCP
on loopback; and what ranks send each other (JSON and .npy, never pickle)."""

import os
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

import nanocnn as nc
import nanocnn.train.presets
from mpi_jobs import (
    LINUX,
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
from nanocnn.train.config import Config


@pytest.mark.slow
def test_an_exception_on_one_rank_ends_the_whole_job_in_one_line(mpiexec, tmp_path):
    (tmp_path / "train.py").write_text(SCRIPT)
    start = time.time()
    done = run_job(
        mpi_command(mpiexec, 2, "--preset", "failing", *options(SMALL), "--out", "run", script=tmp_path / "train.py"),
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 1 and time.time() - start < 60
    assert "Traceback" in done.stderr and "RuntimeError: boom" in done.stderr  # a bug: its traceback, then
    assert [line for line in done.stderr.splitlines() if "error" in line] == ["error: rank 1: RuntimeError: boom"]
    assert len((tmp_path / "run" / "metrics.csv").read_text().splitlines()) == 2  # epoch 1's, intact


@pytest.mark.slow
@LINUX
def test_tcp_on_the_loopback_interface_gives_the_same_weights(mpiexec, tmp_path, tmp_path_factory):
    """What separate machines use: no shared memory (MPIR_CVAR_NOLOCAL), libfabric's TCP provider on lo."""
    vendor = subprocess.run(
        [sys.executable, "-c", "from mpi4py import MPI; print(MPI.get_vendor()[0])"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    ).stdout.strip()
    if vendor != "MPICH":
        pytest.skip(f"the settings for TCP on loopback are MPICH's; mpi4py uses {vendor}")
    tag = uuid.uuid4().hex
    env = dict(
        os.environ,
        NANOCNN_TEST_JOB=tag,
        MPIR_CVAR_NOLOCAL="1",
        MPIR_CVAR_CH4_NETMOD="ofi",
        FI_PROVIDER="tcp",
        FI_TCP_IFACE="lo",
    )
    job = subprocess.Popen(
        mpi_command(mpiexec, 2, *options(SMALL), "--out", "run", launcher=["-iface", "lo"]),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    connections, deadline = set(), time.time() + TIMEOUT
    while job.poll() is None and time.time() < deadline:  # every TCP socket the launcher and the ranks hold
        for pid, rank in job_processes(tag).items():
            try:
                connections |= {(rank is not None, *c) for c in tcp_sockets(pid)}
            except OSError:  # the process ended meanwhile
                pass
        time.sleep(0.05)
    _, stderr = job.communicate(timeout=TIMEOUT)
    assert job.returncode == 0, stderr
    assert_same_run(tmp_path / "run", one_process(tmp_path_factory, **SMALL))
    connected = {c for c in connections if c[3] != "0A"}  # not LISTEN
    assert connected and all({local[0], remote[0]} <= {"127.0.0.1", "::1"} for _, local, remote, _ in connected)
    listening_ranks = {local for is_rank, local, _, state in connections if is_rank and state == "0A"}
    assert any(is_rank and remote in listening_ranks for is_rank, _, remote, _ in connected)  # rank to rank over TCP


def tcp_sockets(pid):
    """(local (ip, port), remote (ip, port), state) of the TCP sockets process pid holds; IPv6 ones by their hex."""
    inodes = {os.readlink(f"/proc/{pid}/fd/{fd}")[len("socket:[") : -1] for fd in os.listdir(f"/proc/{pid}/fd")}
    found = []
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as f:
            rows = [row.split() for row in f.read().splitlines()[1:]]
        found += [(address(r[1]), address(r[2]), r[3]) for r in rows if r[9] in inodes]
    return found


def address(text):
    """'0100007F:1F90' -> ('127.0.0.1', 8080); IPv6 (32 hex digits) -> '::1' for loopback, else the hex."""
    host, port = text.split(":")
    ip = {
        8: lambda: ".".join(str(b) for b in bytes.fromhex(host)[::-1]),
        32: lambda: "::1" if host == "00000000000000000000000001000000" else host,
    }[len(host)]()
    return ip, int(port, 16)


def test_a_launcher_of_another_mpi_is_reported_in_one_line(mpiexec, tmp_path):
    """Every process the launcher started sees a job of 1: the first says so, in one line; the others are silent."""
    argv = [sys.executable, "-m", "nanocnn", "train", "--distributed", *options(SMALL), "--out", "run"]
    first = run_job(argv, cwd=tmp_path, env=dict(os.environ, PMI_SIZE="2", PMI_RANK="0"))
    assert first.returncode == 2 and not (tmp_path / "run").exists()
    assert (
        first.stderr.startswith(
            "error: --distributed: the launcher started 2 processes, but each is alone in its MPI job"
        )
        and len(first.stderr.splitlines()) == 1
    )
    second = run_job(argv, cwd=tmp_path, env=dict(os.environ, PMI_SIZE="2", PMI_RANK="1"))
    assert second.returncode == 2 and second.stderr == second.stdout == ""


@pytest.mark.slow
def test_distributed_without_a_launcher_trains_in_one_process(mpiexec, tmp_path, tmp_path_factory):
    done = run_job(
        [sys.executable, "-m", "nanocnn", "train", "--distributed", "--no-progress", *options(SMALL), "--out", "run"],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("note: --distributed without an MPI launcher: training in this one process")
    assert_same_run(tmp_path / "run", one_process(tmp_path_factory, **SMALL))


def test_messages_between_ranks_are_json_and_npy_never_pickle():
    """parallel/messages.py: what ranks send each other is parsed, never unpickled, and arrives bit-identical."""
    import pickle

    from nanocnn.parallel import messages
    from nanocnn.train.presets import resolve

    model = nc.Sequential(nc.Conv2d(1, 2, 3), nc.ReLU(), nc.Flatten(), nc.Linear(2 * 4 * 4, 3))
    logits = np.random.default_rng(0).standard_normal((64, 10)).astype(np.float32)
    sent = {"results": [(logits, 0.1 + 0.2)], "config": resolve(Config(lr=3e-3)), "model": model}
    data = messages.dumps(sent)
    assert b"__array__" in data and not data.startswith(b"\x80")  # JSON, not a pickle stream
    got = messages.loads(data)
    assert np.array_equal(got["results"][0][0], logits) and got["results"][0][1] == 0.1 + 0.2
    assert got["config"] == sent["config"] and got["model"].spec() == model.spec()
    with pytest.raises(ValueError):
        messages.loads(pickle.dumps({"a": 1}))  # a pickle from elsewhere is refused, not run
    mpi = pytest.importorskip("mpi4py.MPI")
    messages.use_with(mpi)
    assert bytes(mpi.pickle.dumps({"a": (1, 2)})) == b'{"a": [1, 2]}'  # what the lowercase methods now send
    with pytest.raises(ValueError):
        mpi.pickle.loads(pickle.dumps({"a": 1}))
