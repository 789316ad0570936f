"""Training with MPI on loopback: `mpiexec -n K nanocnn train --distributed` against one process, and its failures.

Needs mpi4py and the mpiexec of the same MPI (pip install '.[test]' brings both, with MPICH); the tests
that run MPI skip without them, unless NANOCNN_REQUIRE_MPI=1 (CI) turns the skip into a failure.
"""

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

import nanocnn as nc
import nanocnn.train.presets
from nanocnn.parallel import World
from nanocnn.parallel.mpi import RANKS, launcher
from nanocnn.train import fit
from nanocnn.train.config import Config

SMALL = dict(limit_train=640, limit_test=200, epochs=2)  # 10 batches of 64 (2 parts each) per epoch
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


@pytest.fixture(scope="module")
def mpiexec():
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
            "the ranks disagree: rank 1: --lr 0.01 (rank 0: 0.003); start every rank with the same options and data",
        ),
    ],
)
def test_a_rank_with_bad_data_or_other_options_stops_every_rank_in_one_line(mpiexec, tmp_path, rank_1, error):
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 garbage")
    rank = [sys.executable, "-m", "nanocnn", "train", "--distributed", *options(SMALL), "--out", "run"]
    done = run_job([mpiexec, "-n", "1", *rank, ":", "-n", "1", *rank, *rank_1], cwd=tmp_path)  # rank 1 sees others
    assert done.returncode == 2 and done.stderr.splitlines() == [f"error: {error}"]
    assert not (tmp_path / "run").exists() and done.stdout == ""  # stopped before anything was written


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

    import nanocnn as nc
    from nanocnn.parallel import messages
    from nanocnn.train.config import Config
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
