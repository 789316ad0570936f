"""`nanocnn train --live`: the recorder never changes a run (bit-identical weights, also when it looks at every
step), resume continues its curves, the server answers as `nanocnn serve` does (hostile requests, 8 clients at
once), and the command: the `watching on` line, a port in use before anything is trained, and MPI rank 0."""

import json
import re
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import nanocnn as nc
import nanocnn.serve.live as live_module
from nanocnn.serve.live import Live, start_server, stop_server
from nanocnn.train import Config, fit
from serving import TIMEOUT, call, default_sigint, stop

SMALL = dict(limit_train=1280, limit_test=300, epochs=2)  # 10 steps of 128 an epoch


def quiet(*args):
    pass


def train(tmp_path, name, watch=None, **settings):
    model, run, acc = fit(Config(**(SMALL | settings)), out=tmp_path / name, progress=False, log=quiet, watch=watch)
    return model.state_dict(), acc


def test_watching_every_step_leaves_the_weights_and_the_metrics_bit_identical(tmp_path, monkeypatch):
    monkeypatch.setattr(live_module, "PROBE_SECONDS", 0.0)  # a look after every step: the most it can do
    watch = Live()
    watched, watched_acc = train(tmp_path, "watched", watch)
    plain, plain_acc = train(tmp_path, "plain")
    assert watched.keys() == plain.keys() and all(np.array_equal(watched[k], plain[k]) for k in plain)
    assert watched_acc == plain_acc
    state = json.loads(watch.document)
    assert state["status"] == "done" and state["step"] == state["total_steps"] == 20
    assert [p[0] for p in state["probe"]] == list(range(21))  # at the start, then after every step
    assert [p[0] for p in state["loss"]] == list(range(1, 21)) and all(p[1] > 0 and p[2] > 0 for p in state["loss"])
    assert [m["epoch"] for m in state["epoch_metrics"]] == [1, 2]
    assert state["epoch_metrics"][-1]["test_acc"] == watched_acc
    assert state["probe"][-1][1] > state["probe"][0][1]  # it learned something
    filters = state["filters"]
    assert filters["shape"] == [16, 1, 5, 5] and len(filters["values"]) == 16 * 25 and min(filters["moved"]) > 0
    assert state["serve_command"] == f"nanocnn serve {tmp_path / 'watched'}"
    digits = watch.digits
    assert len(digits["images"]) == len(state["digits"]["predicted"]) == live_module.DIGITS
    assert all(len(image) == 28 * 28 and 0 <= min(image) and max(image) <= 255 for image in digits["images"])


def test_the_probe_sees_the_weights_of_the_step_it_names(tmp_path, monkeypatch):
    """Each look copies the weights between two steps: the probe accuracy recorded at step k is the accuracy of
    the weights after exactly k steps (replayed here step by step, without the recorder)."""
    monkeypatch.setattr(live_module, "PROBE_SECONDS", 0.0)
    watch = Live()
    train(tmp_path, "watched", watch, epochs=1)
    state = json.loads(watch.document)
    seen = {}

    class Replay(Live):
        def step(self, model, step, loss, lr, images):
            probe = model.replicate().eval()(self.images).argmax(axis=1)
            seen[step] = float((probe == self.labels).mean())

    replay = Replay()
    train(tmp_path, "replay", replay, epochs=1)
    assert {s: a for s, a in state["probe"] if s > 0} == seen


def test_a_test_split_smaller_than_the_grid_shows_the_digits_it_has(tmp_path):
    watch = Live()
    train(tmp_path, "few", watch, epochs=1, limit_test=20)
    state = json.loads(watch.document)
    assert len(watch.digits["images"]) == len(watch.digits["labels"]) == 20 < live_module.DIGITS
    assert len(state["digits"]["predicted"]) == len(state["digits"]["confidence"]) == 20
    assert all(0.1 <= c <= 1 for c in state["digits"]["confidence"])  # a highest of 10 probabilities
    assert state["status"] == "done" and state["probe"][-1][1] == state["epoch_metrics"][-1]["test_acc"]


def test_resume_continues_the_curves_from_the_checkpoint(tmp_path):
    train(tmp_path, "run", epochs=1)
    watch = Live()
    fit(Config(epochs=2), out=tmp_path / "run", resume=True, progress=False, log=quiet, watch=watch)
    state = json.loads(watch.document)
    assert [m["epoch"] for m in state["epoch_metrics"]] == [1, 2]
    assert state["loss"][0][0] == 10 and state["loss"][0][2] is None  # epoch 1's mean loss, from metrics.csv
    assert [p[0] for p in state["loss"][1:]] == list(range(11, 21))
    assert state["probe"][0][0] == 10 and state["step"] == 20


def test_a_stopped_run_says_so_and_is_not_looked_at_again(tmp_path):
    class Stop(Exception):
        pass

    watch = Live()
    looks = []
    original = watch.look
    watch.look = lambda model, step: (looks.append(step), original(model, step))

    at_stop = []

    def stop_after_epoch_1(line):
        if line.startswith("epoch 1/"):
            at_stop.extend(looks)
            raise Stop

    with pytest.raises(Stop):
        fit(Config(**SMALL), out=tmp_path / "run", progress=False, log=stop_after_epoch_1, watch=watch)
    state = json.loads(watch.document)
    assert state["status"] == "stopped" and looks == at_stop and looks[0] == 0  # no look after the stop
    assert state["step"] == 10 and state["seconds_left"] is None


@pytest.fixture()
def live_server():
    watch, server = start_server("127.0.0.1", 0)
    try:
        yield watch, server
    finally:
        stop_server(server, watch, grace=0)


def test_the_server_answers_the_live_routes_only_and_as_strictly_as_serve(live_server, tmp_path):
    watch, server = live_server
    port = server.port
    assert call(port, "GET", "/api/live").json() == {"status": "starting"}
    page = call(port, "GET", "/")
    assert (
        page.status == 200
        and b"watch it learn" in page.body
        and "default-src 'none'" in page.headers["content-security-policy"]
    )
    for path in ("/js/live.js", "/js/chart.js", "/live.css", "/style.css"):
        assert call(port, "GET", path).status == 200, path
    refusals = [
        (call(port, "GET", "/index.html"), 404),  # the other server's page
        (call(port, "GET", "/api/predict"), 404),
        (call(port, "POST", "/api/live", {"a": 1}), 405),
        (call(port, "GET", "/api/live?step=3"), 400),
        (call(port, "GET", "/api/live", headers={"Host": "evil.example:80"}), 403),
        (call(port, "DELETE", "/api/live"), 405),
    ]
    for answer, status in refusals:
        assert answer.status == status and set(answer.json()) == {"error"} and "\n" not in answer.json()["error"]
    fit(Config(**SMALL), out=tmp_path / "run", progress=False, log=quiet, watch=watch)
    state = call(port, "GET", "/api/live").json()
    assert state["status"] == "done" and state["step"] == 20
    digits = call(port, "GET", "/api/live/digits").json()
    assert digits["shape"] == [1, 28, 28] and len(digits["labels"]) == live_module.DIGITS


def test_eight_clients_watching_a_run_get_whole_states_that_only_move_forward(live_server, tmp_path, monkeypatch):
    monkeypatch.setattr(live_module, "PROBE_SECONDS", 0.0)
    watch, server = live_server
    done, seen, errors = threading.Event(), [[] for _ in range(8)], []

    def client(n):
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                answer = call(server.port, "GET", "/api/live")
                assert answer.status == 200
                state = answer.json()
                if state["status"] != "starting":
                    assert len(state["loss"]) == state["step"] and state["probe"][-1][0] == state["step"]
                    seen[n].append(state["step"])
                if done.is_set():
                    return
            except Exception as e:  # reported below: an assertion in a thread would be lost
                errors.append(repr(e))
                return

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    serial, _ = train(tmp_path, "serial")
    watched, _ = train(tmp_path, "watched", watch)
    done.set()
    for t in threads:
        t.join(timeout=TIMEOUT)
    assert errors == [] and not any(t.is_alive() for t in threads)
    assert all(steps == sorted(steps) and steps[-1] == 20 for steps in seen)
    assert all(np.array_equal(serial[k], watched[k]) for k in serial)


def live_process(tmp_path, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "nanocnn", "train", "--live", "--no-progress", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        preexec_fn=default_sigint,
    )


@pytest.mark.slow
def test_the_command_prints_where_to_watch_and_ends_as_without_live(tmp_path):
    options = ["--limit-train", "1280", "--limit-test", "300", "--epochs", "2"]
    proc = live_process(tmp_path, "--port", "0", *options, "--out", "watched")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert re.fullmatch(r"watching on http://127\.0\.0\.1:\d+/", lines[0]) and lines[-1].startswith("test accuracy: ")
    plain = subprocess.run(
        [sys.executable, "-m", "nanocnn", "train", "--no-progress", *options, "--out", "plain"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert plain.stdout.splitlines()[-1] == lines[-1]
    a, b = (nc.load(tmp_path / d / "model.npz")[0].state_dict() for d in ("watched", "plain"))
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_a_port_in_use_fails_before_anything_is_trained_or_written(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = live_process(tmp_path, "--port", port, "--out", "run")
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and out == "" and not (tmp_path / "run").exists()
    assert err.startswith(f"error: --live: cannot listen on 127.0.0.1:{port}: ") and err.count("\n") == 1
    for bad, words in ((["--port", "70000"], "--port"), (["--host", " "], "--host")):
        proc = live_process(tmp_path, *bad, "--out", "run")
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2 and words in err and err.count("\n") == 1, err


@pytest.mark.slow
def test_keep_serving_shows_the_final_state_until_ctrl_c(tmp_path):
    options = ["--limit-train", "640", "--limit-test", "100", "--epochs", "1", "--keep-serving", "--out", "kept"]
    proc = live_process(tmp_path, "--port", "0", *options)
    try:
        port = int(re.search(r":(\d+)/", proc.stdout.readline())[1])
        line = proc.stdout.readline()
        while line and not line.startswith("training done; the page stays up"):
            line = proc.stdout.readline()
        assert line.startswith(f"training done; the page stays up at http://127.0.0.1:{port}/")
        state = call(port, "GET", "/api/live").json()
        assert state["status"] == "done" and state["serve_command"] == "nanocnn serve kept"  # as given to --out
        time.sleep(1)
        assert proc.poll() is None and call(port, "GET", "/api/live").json() == state  # still up, unchanged
    finally:
        assert stop(proc) == 0
    assert proc.stderr.read().strip().splitlines()[-1] == "stopped"


@pytest.mark.slow
def test_with_mpi_rank_0_serves_and_the_weights_are_those_of_one_process(mpiexec, tmp_path, tmp_path_factory):
    from mpi_jobs import assert_same_run, mpi_command, one_process, options, run_job

    settings = dict(limit_train=640, limit_test=200, epochs=1)
    done = run_job(mpi_command(mpiexec, 2, *options(settings), "--live", "--port", "0", "--out", "run"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sum(line.startswith("watching on http://127.0.0.1:") for line in done.stdout.splitlines()) == 1
    assert_same_run(tmp_path / "run", one_process(tmp_path_factory, **settings))
