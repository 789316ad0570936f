"""`nanocnn serve`'s JSON API and server, through http.client: answers equal `nanocnn predict` and the layers'
own numbers, every refusal."""

import argparse
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
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import pytest
from PIL import Image

import nanocnn as nc
from nanocnn.cli import main
from nanocnn.data import bundled_path, load_image
from nanocnn.nn.trace import Trace
from nanocnn.serve import Server
from nanocnn.serve.handler import CSP
from nanocnn.serve.server import exposure_warning
from nanocnn.train.evaluation import predict_proba

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


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return trained_model(tmp_path_factory)


@pytest.fixture(scope="module")
def server(model_dir):
    with serve_process(model_dir, "--limit-test", "2000", "--threads", "2") as running:
        yield running


@pytest.fixture(scope="module")
def digits():
    return np.load(bundled_path())["testimages"][:8]  # (8, 28, 28) uint8, white on black


def test_predictions_equal_nanocnn_predict(server, model_dir, digits, tmp_path, capsys):
    paths = []
    for i, digit in enumerate(digits[:6]):  # drawn dark on light, 3x larger
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(255 - np.kron(digit, np.ones((3, 3), np.uint8))).save(paths[-1])
    assert main(["predict", str(model_dir), *map(str, paths)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    model, meta = nc.load(model_dir / "model.npz")
    for path, line in zip(paths, printed):
        answer = call(server.port, "POST", "/api/predict", drawing(np.asarray(Image.open(path).convert("L"))))
        assert answer.status == 200 and answer.headers["content-type"] == "application/json"
        result = answer.json()
        expected = [(int(k), float(p)) for k, p in re.findall(r"(\d+) \((\d\.\d{3})\)", line)]
        assert [t["class"] for t in result["top"]] == [k for k, _ in expected]
        assert result["prediction"] == expected[0][0]
        assert all(abs(t["probability"] - p) <= 0.0005 + 1e-9 for t, (_, p) in zip(result["top"], expected))
        proba = predict_proba(model, load_image(path, tuple(meta["input_shape"]))[None])[0]
        np.testing.assert_allclose(result["probabilities"], proba, rtol=1e-5, atol=1e-7)
    labels = np.load(bundled_path())["testlabels"][:6]
    assert sum(int(line.split(": ")[1][0]) == y for line, y in zip(printed, labels)) >= 5  # the model works


def test_the_views_are_the_layers_own_numbers_in_every_channel(server, model_dir, digits):
    """One trace per request: the input, every layer's output and the saliency equal, to the bit, those of
    nanocnn.nn.trace on the same prepared image (the numbers themselves, not pictures of them)."""
    result = call(server.port, "POST", "/api/predict", drawing(255 - digits[1])).json()
    model, meta = nc.load(model_dir / "model.npz")
    image = load_image_from_pixels(255 - digits[1], tuple(meta["input_shape"]))
    assert decoded(result["input"]["image"]).tobytes() == image.tobytes()
    assert result["blank"] is False and abs(sum(result["probabilities"]) - 1) < 1e-5
    trace = Trace(model, image)
    assert [layer["kind"] for layer in result["layers"]] == [type(layer).__name__ for layer in model.layers]
    for view, layer, out in zip(result["layers"], model.layers, trace.outputs):
        assert view["description"] == repr(layer) and view["shape"] == list(out.shape)
        assert decoded(view["output"]).tobytes() == out.tobytes()  # all channels, real values
    assert result["saliency"]["class"] == result["prediction"] == trace.prediction
    gradient = trace.backward(trace.onehot(trace.prediction))
    assert decoded(result["saliency"]["gradient"]).tobytes() == gradient.tobytes()
    assert result["saliency"]["scale"] == float(np.abs(gradient).max()) > 0
    np.testing.assert_allclose(result["probabilities"], trace.probabilities, rtol=1e-6)


def test_a_request_gets_only_the_views_it_names(server, digits):
    """The page asks for what it shows; every answer carries the prediction, whatever the views."""
    full = call(server.port, "POST", "/api/predict", drawing(digits[3])).json()
    assert {"input", "saliency", "layers"} <= set(full)
    for views in ([], ["input"], ["layers", "saliency"]):
        answer = call(server.port, "POST", "/api/predict", {**drawing(digits[3]), "views": views}).json()
        assert set(answer) == {"prediction", "probabilities", "top", "blank", "ms", *views}
        assert answer["prediction"] == full["prediction"]
        for name in views:
            assert answer[name] == full[name]
    sample = call(server.port, "GET", "/api/sample?kind=test&index=5&views=input").json()
    assert "input" in sample and "layers" not in sample and sample["index"] == 5


def load_image_from_pixels(pixels, shape):
    from nanocnn.data import prepare_image as prepare

    return prepare(np.asarray(pixels, dtype=np.float32) / 255, shape)


def test_either_polarity_and_any_size_give_the_same_answer(server, digits):
    answers = []
    for image in (digits[2], 255 - digits[2], np.kron(255 - digits[2], np.ones((5, 4), np.uint8))):
        answers.append(call(server.port, "POST", "/api/predict", drawing(image)).json())
    assert answers[0]["prediction"] == answers[1]["prediction"] == answers[2]["prediction"] is not None
    np.testing.assert_allclose(decoded(answers[0]["input"]["image"]), decoded(answers[1]["input"]["image"]), atol=1e-3)
    floats = drawing(digits[2] * 0.99 + 0.25)  # floats are numbers too
    assert call(server.port, "POST", "/api/predict", floats).json()["prediction"] == answers[0]["prediction"]


@pytest.mark.parametrize("fill", [0, 255, 128, 37.5])
def test_a_blank_drawing_gets_no_prediction(server, fill):
    result = call(server.port, "POST", "/api/predict", {"width": 30, "height": 20, "pixels": [fill] * 600}).json()
    assert result["prediction"] is None and result["probabilities"] is None and result["blank"] is True
    assert result["top"] == [] and result["layers"] is None and result["saliency"] is None
    image = decoded(result["input"]["image"])
    assert image.shape == (1, 28, 28) and not image.any()


PAGE_FILES = ["/", "/style.css", "/js/main.js", "/js/api.js", "/js/pad.js", "/js/paint.js"] + [
    f"/js/views/{name}.js" for name in ("prediction", "input", "saliency", "layers")
]


def test_pages_info_and_samples(server):
    for path in PAGE_FILES:
        kind = "text/html" if path == "/" else "text/css" if path.endswith(".css") else "text/javascript"
        answer = call(server.port, "GET", path)
        assert answer.status == 200 and answer.headers["content-type"].startswith(kind) and answer.body
        assert answer.headers["content-security-policy"] == CSP and answer.headers["cache-control"] == "no-cache"
        assert not any(h.startswith("access-control-") for h in answer.headers)
    page = call(server.port, "GET", "/").body.decode()
    assert '<canvas id="pad"' in page and 'id="clear"' in page and "<script>" not in page and " style=" not in page
    assert '<script type="module" src="/js/main.js">' in page
    head = call(server.port, "HEAD", "/")
    assert head.status == 200 and head.body == b"" and int(head.headers["content-length"]) == len(page.encode())
    assert call(server.port, "GET", "/favicon.ico").status == 204
    info = call(server.port, "GET", "/api/info").json()
    assert info["input_shape"] == [1, 28, 28] and info["num_classes"] == 10 and info["parameters"] > 0
    assert info["samples"]["count"] == 2000 and info["samples"]["source"] == "the bundled MNIST"
    assert 0 < info["samples"]["mistakes"] < 200 and info["samples"]["accuracy"] > 0.9
    labels = np.load(bundled_path())["testlabels"]
    sample = call(server.port, "GET", "/api/sample?kind=test&index=3").json()
    assert sample["index"] == 3 and sample["label"] == labels[3] and sample["kind"] == "test"
    assert sample["prediction"] is not None and len(sample["layers"]) == 8  # the default preset's layers
    random = call(server.port, "GET", "/api/sample?kind=random").json()
    assert 0 <= random["index"] < 2000 and random["label"] == labels[random["index"]]
    first, second = (call(server.port, "GET", f"/api/sample?kind=mistake&rank={r}").json() for r in (0, 1))
    for mistake in (first, second):
        assert mistake["prediction"] != mistake["label"] and mistake["mistakes"] == info["samples"]["mistakes"]
    assert first["probabilities"][first["prediction"]] >= second["probabilities"][second["prediction"]]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:  # keep-alive: one connection, several requests
        for _ in range(3):
            conn.request("GET", "/api/info")
            assert json.loads(conn.getresponse().read()) == info
    finally:
        conn.close()


def rejections(port):
    """(name, status, what the error says, answer) for each hostile or malformed request."""
    ok = {"width": 2, "height": 2, "pixels": [0, 0, 0, 0]}

    def predict(body, **headers):
        return call(port, "POST", "/api/predict", body, {"Content-Type": "application/json", **headers})

    cases = [
        ("unknown path", 404, "no such page", call(port, "GET", "/nope")),
        ("traversal", 404, "no such page", call(port, "GET", "/../etc/passwd")),
        ("traversal in assets", 404, "no such page", call(port, "GET", "/assets/../../pyproject.toml")),
        ("encoded traversal", 404, "no such page", call(port, "GET", "/%2e%2e/%2e%2e/etc/passwd")),
        ("a page file's own name", 404, "no such page", call(port, "GET", "/index.html")),
        ("absolute path", 404, "no such page", call(port, "GET", "//etc/passwd")),
        ("path after a page", 404, "no such page", call(port, "GET", "/js/main.js/../../../../etc/passwd")),
        ("a folder of the page", 404, "no such page", call(port, "GET", "/js/")),
        ("the old script", 404, "no such page", call(port, "GET", "/app.js")),
        ("GET predict", 405, "takes POST", call(port, "GET", "/api/predict")),
        ("POST page", 405, "takes GET", call(port, "POST", "/", ok)),
        ("PUT info", 405, "takes GET", call(port, "PUT", "/api/info", "x")),
        ("DELETE", 405, "takes GET", call(port, "DELETE", "/")),
        (
            "OPTIONS preflight",
            405,
            "takes POST",
            call(
                port,
                "OPTIONS",
                "/api/predict",
                headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
            ),
        ),
        ("made-up method", 501, "Unsupported method", call(port, "BREW", "/")),
        ("foreign Host", 403, "not this server's", call(port, "GET", "/", headers={"Host": f"evil.example:{port}"})),
        ("foreign Host on the API", 403, "not this server's", predict(ok, Host=f"evil.example:{port}")),
        ("another port", 403, "not this server's", call(port, "GET", "/", headers={"Host": "127.0.0.1:1"})),
        ("Host without port", 403, "not this server's", call(port, "GET", "/", headers={"Host": "localhost"})),
        ("foreign Origin", 403, "Origin", predict(ok, Origin="http://evil.example")),
        (
            "text/plain",
            415,
            "application/json",
            call(port, "POST", "/api/predict", json.dumps(ok), {"Content-Type": "text/plain"}),
        ),
        ("no Content-Type", 415, "application/json", call(port, "POST", "/api/predict", json.dumps(ok))),
        (
            "another charset",
            415,
            "application/json",
            predict(json.dumps(ok), **{"Content-Type": "application/json; charset=latin-1"}),
        ),
        ("query on a page", 400, "no query string", call(port, "GET", "/?x=1")),
        ("bad sample kind", 400, "kind=random", call(port, "GET", "/api/sample?kind=evil")),
        ("extra sample parameter", 400, "kind=random", call(port, "GET", "/api/sample?kind=random&x=1")),
        ("repeated parameter", 400, "kind=random", call(port, "GET", "/api/sample?kind=random&kind=random")),
        ("missing rank", 400, "kind=random", call(port, "GET", "/api/sample?kind=mistake")),
        ("negative rank", 400, "kind=random", call(port, "GET", "/api/sample?kind=mistake&rank=-1")),
        ("rank too large", 400, "rank must be", call(port, "GET", "/api/sample?kind=mistake&rank=99999")),
        ("index too large", 400, "index must be", call(port, "GET", "/api/sample?kind=test&index=2000")),
        ("encoded query", 400, "kind=random", call(port, "GET", "/api/sample?kind=%72andom")),
        ("no query", 400, "kind=random", call(port, "GET", "/api/sample")),
        ("invalid JSON", 400, "not valid JSON", predict("{")),
        ("NaN", 400, "not valid JSON", predict('{"width": 1, "height": 1, "pixels": [NaN]}')),
        ("not UTF-8", 400, "not valid JSON", predict(b'{"width": 1, "height": 1, "pixels": [\xff]}')),
        ("nested too deeply", 400, "not valid JSON", predict("[" * 200000)),
        ("not an object", 400, "JSON object", predict([1, 2])),
        ("unknown field", 400, "unknown field 'label'", predict({**ok, "label": 3})),
        ("missing field", 400, "missing field 'pixels'", predict({"width": 2, "height": 2})),
        ("unknown view", 400, "unknown view 'features'", predict({**ok, "views": ["features"]})),
        ("views not a list", 400, "views must be a list", predict({**ok, "views": "input"})),
        ("a view twice", 400, "names a view twice", predict({**ok, "views": ["input", "input"]})),
        ("unknown view in a query", 400, "unknown view 'x'", call(port, "GET", "/api/sample?kind=random&views=x")),
    ]
    fields = [
        ("width", 0, "width must be an integer >= 1 and <= 1024, got 0"),
        ("width", 1025, "got 1025"),
        ("width", "2", "got '2'"),
        ("width", 2.0, "got 2.0"),
        ("width", True, "got True"),
        ("height", -2, "height must be an integer >= 1 and <= 1024, got -2"),
        ("height", None, "got None"),
        ("pixels", [0, 0, 0], "pixels must be a list of width * height = 4 numbers, got 3 values"),
        ("pixels", "0000", "got '0000'"),
        ("pixels", [0, 0, 0, -1], "pixels[3] must be a finite number >= 0"),
        ("pixels", [0, 256, 0, 0], "pixels[1] must be a finite number >= 0 and <= 255, got 256"),
        ("pixels", [0, 0, "a", 0], "pixels[2]"),
        ("pixels", [None, 0, 0, 0], "pixels[0]"),
        ("pixels", [0, 0, 0, True], "pixels[3]"),
        ("pixels", [[0], 0, 0, 0], "pixels[0]"),
        ("pixels", [0, 0, 0, 10**30], "pixels[3]"),
    ]
    cases += [(f"{name}={value!r}", 400, text, predict({**ok, name: value})) for name, value, text in fields]
    cases.append(("infinite pixel", 400, "pixels[0]", predict('{"width": 1, "height": 1, "pixels": [1e999]}')))
    return cases


def test_every_rejection_gets_its_status_and_one_line_of_json(server):
    for name, status, text, answer in rejections(server.port):
        assert answer.status == status, (name, answer)
        error = answer.json()["error"]
        assert text in error and "\n" not in error and "Traceback" not in error, (name, error)
        assert answer.headers["content-security-policy"] == CSP, name
        assert answer.headers["x-content-type-options"] == "nosniff" and answer.headers["cache-control"] == "no-store"
        assert not any(h.startswith("access-control-") for h in answer.headers), name
        assert answer.headers.get("connection") == "close", name
    assert call(server.port, "OPTIONS", "/api/predict").headers["allow"] == "POST"


def test_length_and_framing_refusals_on_raw_sockets(server):
    raw_refusals(server.port)


def raw_refusals(port):
    head = f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
    answer, seconds = raw(port, (head + f"Content-Length: {10**9}\r\n\r\n").encode())
    assert answer.status == 413 and "1,048,576" in answer.json()["error"] and seconds < 5  # the body is never read
    answer, _ = raw(port, (head + f"Content-Length: {2**20 + 1}\r\nExpect: 100-continue\r\n\r\n").encode())
    assert answer.status == 413  # no `100 Continue` first: never send it
    answer, _ = raw(port, (head + "\r\n").encode())
    assert answer.status == 411 and "Content-Length" in answer.json()["error"]
    answer, _ = raw(port, (head + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n").encode())
    assert answer.status == 411
    answer, _ = raw(port, (head + "Content-Length: -5\r\n\r\n").encode())
    assert answer.status == 400 and "Content-Length" in answer.json()["error"]
    answer, _ = raw(port, (head + "Content-Length: 10\r\nConnection: close\r\n\r\n{}").encode())
    assert answer.status == 400 and "ended after 2 of its 10 bytes" in answer.json()["error"]
    answer, _ = raw(port, b"GET / HTTP/1.0\r\n\r\n")  # no Host at all
    assert answer.status == 403 and answer.headers["content-security-policy"] == CSP
    for garbage in (
        b"NOT A REQUEST LINE AT ALL\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\r\n\r\n",
        b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
    ):
        answer, _ = raw(port, garbage)
        assert 400 <= answer.status < 500 or answer.status == 505, garbage[:40]
        assert "Traceback" not in answer.body.decode("latin-1") and answer.headers["content-security-policy"] == CSP


def test_the_server_answers_correctly_after_the_battery(server, digits):
    before = without_time(call(server.port, "POST", "/api/predict", drawing(digits[4])))
    rejections(server.port)
    raw_refusals(server.port)
    assert without_time(call(server.port, "POST", "/api/predict", drawing(digits[4]))) == before
    assert server.proc.poll() is None
    for host in (f"localhost:{server.port}", f"[::1]:{server.port}", f"LOCALHOST:{server.port}"):
        assert call(server.port, "GET", "/api/info", headers={"Host": host}).status == 200
    same_origin = {"Origin": f"http://127.0.0.1:{server.port}"}
    assert call(server.port, "POST", "/api/predict", drawing(digits[4]), same_origin).status == 200
    log = open(server.log).read()
    assert "Traceback" not in log and re.search(r"POST /api/predict 200 \d+\.\d ms", log)


def test_concurrent_requests_equal_the_serial_answers(server, digits):
    jobs = [("POST", "/api/predict", drawing(d)) for d in digits[:4]] + [
        ("POST", "/api/predict", drawing(255 - digits[5])),
        ("GET", "/api/sample?kind=test&index=7", None),
        ("GET", "/api/info", None),
        ("POST", "/api/predict", {"width": 1}),
        ("GET", "/nope", None),
        ("POST", "/api/predict", {"width": 2, "height": 1, "pixels": [255, 255]}),
    ]
    serial = [without_time(call(server.port, *job)) for job in jobs]

    def worker(t):
        order = [(t * 5 + n) % len(jobs) for n in range(25)]
        return [(j, without_time(call(server.port, *jobs[j]))) for j in order]

    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        results = [r for chunk in pool.map(worker, range(8), timeout=120) for r in chunk]
    assert len(results) == 200 and all(answer == serial[j] for j, answer in results)
    assert time.monotonic() - start < 120


def test_a_bug_is_a_generic_500_with_the_traceback_only_in_the_log(capsys):
    class Broken:
        def info(self):
            raise RuntimeError("secret detail of the bug")

    server = Server("127.0.0.1", 0, Broken())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        answer = call(server.port, "GET", "/api/info")
        assert answer.status == 500 and answer.json() == {"error": "internal error (the server's log has the details)"}
        assert call(server.port, "GET", "/").status == 200  # still serving
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=TIMEOUT)
    err = capsys.readouterr().err
    assert "Traceback" in err and "secret detail of the bug" in err


def test_exposure_warning():
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1"):
        assert exposure_warning(host) is None
    for host in ("0.0.0.0", "::", "192.168.1.5", "example.org"):
        assert exposure_warning(host).startswith(
            f"warning: listening on {host}"
        ) and "other machines" in exposure_warning(host)


def test_cli_errors_are_one_line_with_status_2_before_listening(model_dir, tmp_path, capsys):
    (tmp_path / "garbage.npz").write_bytes(b"not a model")
    colour = nc.Sequential(nc.Conv2d(3, 2, 3), nc.Flatten(), nc.Linear(2 * 6 * 6, 4))
    nc.save(colour, tmp_path / "colour.npz", meta={"input_shape": [3, 8, 8], "num_classes": 4})
    taken = socket.create_server(("127.0.0.1", 0))
    cases = [
        ([str(tmp_path / "missing.npz")], "model file not found"),
        ([str(tmp_path / "garbage.npz")], "not a readable .npz"),
        ([str(tmp_path / "colour.npz")], "needs a 1-channel model"),
        ([str(model_dir), "--port", "70000"], "--port must be an integer >= 0 and <= 65535, got 70000"),
        ([str(model_dir), "--port", "x"], "must be an integer, got 'x'"),
        ([str(model_dir), "--threads", "0"], "threads must be an integer >= 1, got 0"),
        ([str(model_dir), "--host", ""], "--host must be an address"),
        ([str(model_dir), "--port", str(taken.getsockname()[1])], "cannot listen on 127.0.0.1:"),
        ([str(model_dir), "--port", "0", "--data", str(tmp_path / "nothing.npz")], "data not found"),
    ]
    try:
        for argv, text in cases:
            assert main(["serve", *argv]) == 2, argv
            out, err = capsys.readouterr()
            assert err.startswith("error: ") and text in err and err.count("\n") == 1 and "serving on" not in out, err
    finally:
        taken.close()


def test_data_option_and_models_of_other_sizes(model_dir, tmp_path, capsys, digits):
    from nanocnn.cli.serve import make_api

    data = np.load(bundled_path())
    np.savez(
        tmp_path / "few.npz",
        trainimages=data["testimages"][:10],
        trainlabels=data["testlabels"][:10],
        testimages=data["testimages"][:50],
        testlabels=data["testlabels"][:50],
    )
    model, meta = nc.load(model_dir / "model.npz")
    args = argparse.Namespace(data=str(tmp_path / "few.npz"), limit_test=None, threads=1, model=str(model_dir))
    api = make_api(args, model, meta)
    assert api.info()["samples"]["count"] == 50 and api.info()["samples"]["source"] == "few.npz"
    assert api.info()["model"] == f"{model_dir.name}/model.npz"
    # A 1x32x32 model: no bundled test images fit it, drawings are prepared to 32x32.
    rng = np.random.default_rng(0)
    big = nc.Sequential(nc.Conv2d(1, 2, 3, rng=rng), nc.ReLU(), nc.Flatten(), nc.Linear(2 * 30 * 30, 10, rng=rng))
    args = argparse.Namespace(data=None, limit_test=None, threads=1, model="big.npz")
    api = make_api(args, big, {"input_shape": [1, 32, 32], "num_classes": 10})
    assert api.samples is None and "no test images" in capsys.readouterr().err
    result = api.predict(drawing(255 - digits[0]))
    assert decoded(result["input"]["image"]).shape == (1, 32, 32) and result["layers"][0]["shape"] == [2, 30, 30]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_server_cleanly(model_dir, sig):
    with serve_process(model_dir, "--limit-test", "100", "--quiet") as running:
        assert call(running.port, "GET", "/api/info").status == 200
        start = time.monotonic()
        assert stop(running.proc, sig) == 0 and time.monotonic() - start < 5
        log = open(running.log).read()
        assert log.strip().splitlines()[-1] == "stopped" and "Traceback" not in log
        assert "GET /api/info" not in log  # --quiet: only errors are logged


def test_a_body_trickled_in_slowly_gets_408_within_the_deadline(monkeypatch):
    """The body's deadline counts the whole body, not each read: a byte now and then cannot hold a thread."""
    import nanocnn.serve.handler as handler

    class Api:
        def predict(self, request):
            return {"prediction": None}

    monkeypatch.setattr(handler, "TIMEOUT", 1)
    server = Server("127.0.0.1", 0, Api(), quiet=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        head = (
            f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n"
            "Content-Length: 40\r\n\r\n"
        )
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as s:
            s.sendall(head.encode())
            for _ in range(8):  # a byte every 0.3 s: each read is quick, the whole is too slow
                try:
                    s.sendall(b" ")
                except OSError:
                    break
                time.sleep(0.3)
            answer = s.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within 1 s" in answer
        assert time.monotonic() - start < 5
        assert call(server.port, "POST", "/api/predict", {"a": 1}).json() == {"prediction": None}  # still serving
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=TIMEOUT)
