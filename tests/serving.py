"""What the serve tests share: a trained model, `nanocnn serve` as a process, and requests made by hand."""

import base64
import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

from nanocnn.cli import main

TIMEOUT = 20  # seconds for any one request or wait


def default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a shell's background job may ignore it; Python then would too


def trained_model(tmp_path_factory):
    """A model trained once per session by the real CLI (about 97% on MNIST); test_browser.py shares it."""
    run = tmp_path_factory.getbasetemp() / "serve-model"
    if not (run / "model.npz").exists():
        argv = ["train", "--epochs", "1", "--limit-train", "12000", "--limit-test", "500", "--no-progress"]
        assert main([*argv, "--out", str(run)]) == 0
    return run


class Running(NamedTuple):
    port: int
    proc: subprocess.Popen
    log: str  # the server's stderr, a file


@contextmanager
def serve_process(model, *args, timeout=90):
    """`python -m nanocnn serve MODEL --port 0 ARGS` as a process, once it printed its `serving on` line."""
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "nanocnn", "serve", str(model), "--port", "0", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        preexec_fn=default_sigint,
    )
    lines = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            line = ""
        match = re.fullmatch(r"serving on http://127\.0\.0\.1:(\d+)/\n", line)
        assert match, f"no `serving on` line, got {line!r}; stderr: {open(log.name).read()}"
        yield Running(int(match[1]), proc, log.name)
    finally:
        stop(proc)
        log.close()
        os.unlink(log.name)


def stop(proc, sig=signal.SIGINT):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class Answer(NamedTuple):
    status: int
    headers: dict  # lower-case names
    body: bytes

    def json(self):
        return json.loads(self.body)


def call(port, method, path, body=None, headers=None, timeout=TIMEOUT):
    """One request on a fresh connection. A dict or list body is sent as JSON."""
    headers = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def raw(port, data, timeout=TIMEOUT):
    """Send raw bytes, read until the server closes: (Answer, seconds)."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)  # all sent: a short body reads as short
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return Answer(int(lines[0].split()[1]), headers, body), time.monotonic() - start


def drawing(image):
    """A (H, W) uint8 image -> the /api/predict request."""
    return {"width": image.shape[1], "height": image.shape[0], "pixels": image.ravel().tolist()}


def decoded(value):
    """An array as the API sends it ({"shape", "dtype": "float32", "data": base64}) -> the ndarray."""
    assert value["dtype"] == "float32"
    return np.frombuffer(base64.b64decode(value["data"]), "<f4").reshape(value["shape"])


def without_time(answer):
    value = answer.json()
    if isinstance(value, dict):
        value.pop("ms", None)
    return answer.status, value
