"""`nanocnn serve`'s server under attack and under load: every refusal in one line of JSON, raw sockets, 8 clients
at once, signals, slow bodies, and a bug that stays in the log."""

import json
import re
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import nanocnn as nc
from nanocnn.cli import main
from nanocnn.serve import Server
from nanocnn.serve.handler import CSP
from nanocnn.serve.server import exposure_warning
from serving import TIMEOUT, call, drawing, raw, serve_process, stop, without_time


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
    return cases + explanation_rejections(port)


def explanation_rejections(port):
    """The same for the endpoints that explain, backpropagate and teach, and the playground's query."""
    ink = {"width": 3, "height": 3, "pixels": [0, 255, 0, 0, 255, 0, 0, 255, 0]}

    def post(path, **fields):
        return call(port, "POST", path, {**ink, **fields})

    explain = "/api/explain"
    return [
        ("no layer", 400, "missing field 'layer'", post("/api/explain", position=[0, 0, 0])),
        (
            "layer too large",
            400,
            "layer must be an integer >= 0 and <= 13, got 99",
            post("/api/explain", layer=99, position=[0]),
        ),
        ("layer a string", 400, "layer must be an integer", post("/api/explain", layer="1", position=[0, 0, 0])),
        ("layer a bool", 400, "got True", post("/api/explain", layer=True, position=[0, 0, 0])),
        ("gradient layer too low", 400, ">= -1", post("/api/explain", layer=-2, position=[0], what="gradient")),
        (
            "position of another rank",
            400,
            "position must be [c, h, w]",
            post("/api/explain", layer=0, position=[0, 0]),
        ),
        (
            "position past the map",
            400,
            "position[1] must be an integer >= 0 and <= 13, got 14",
            post("/api/explain", layer=0, position=[0, 14, 0]),
        ),
        ("negative position", 400, "position[0] must be", post("/api/explain", layer=0, position=[-1, 0, 0])),
        ("position not a list", 400, "position must be", post("/api/explain", layer=13, position=3)),
        ("position of floats", 400, "got 1.0", post("/api/explain", layer=13, position=[1.0])),
        ("unknown what", 400, "unknown what 'why'", post("/api/explain", layer=0, position=[0, 0, 0], what="why")),
        ("label with a value", 400, "label is for", post("/api/explain", layer=0, position=[0, 0, 0], label=3)),
        (
            "label out of range",
            400,
            "label must be an integer >= 0 and <= 9, got 10",
            post("/api/explain", layer=0, position=[0, 0, 0], what="gradient", label=10),
        ),
        (
            "explain field unknown",
            400,
            "unknown field 'views'",
            post("/api/explain", layer=0, position=[0, 0, 0], views=[]),
        ),
        (
            "a blank drawing",
            400,
            "the drawing is blank",
            call(
                port,
                "POST",
                explain,
                {"width": 2, "height": 2, "pixels": [0] * 4, "layer": 0, "position": [0, 0, 0]},
            ),
        ),
        (
            "sample past the end",
            400,
            "sample must be an integer >= 0 and <= 1999, got 2000",
            call(port, "POST", explain, {"sample": 2000, "layer": 0, "position": [0, 0, 0]}),
        ),
        (
            "sample and a drawing",
            400,
            "unknown field 'height' beside sample",
            call(port, "POST", explain, {**ink, "sample": 1, "layer": 0, "position": [0, 0, 0]}),
        ),
        ("GET explain", 405, "takes POST", call(port, "GET", explain)),
        ("backward label", 400, "label must be an integer >= 0 and <= 9, got -1", post("/api/backward", label=-1)),
        ("backward field", 400, "unknown field 'lr'", post("/api/backward", lr=0.1)),
        ("teach without a label", 400, "missing field 'label'", post("/api/teach", lr=0.1)),
        ("teach lr zero", 400, "lr must be a finite number > 0 and <= 100", post("/api/teach", label=1, lr=0)),
        ("teach lr huge", 400, "got 1e+30", post("/api/teach", label=1, lr=1e30)),
        ("teach lr a string", 400, "got '0.1'", post("/api/teach", label=1, lr="0.1")),
        ("teach label a float", 400, "got 1.5", post("/api/teach", label=1.5)),
        ("geometry without a query", 400, "size=H&kernel=K", call(port, "GET", "/api/geometry")),
        (
            "geometry missing one",
            400,
            "size=H&kernel=K",
            call(port, "GET", "/api/geometry?size=5&kernel=3&stride=1"),
        ),
        (
            "geometry size 0",
            400,
            "size must be an integer >= 1 and <= 256, got 0",
            call(port, "GET", "/api/geometry?size=0&kernel=3&stride=1&padding=0"),
        ),
        (
            "geometry kernel 65",
            400,
            "kernel must be an integer >= 1 and <= 64, got 65",
            call(port, "GET", "/api/geometry?size=9&kernel=65&stride=1&padding=0"),
        ),
        (
            "geometry negative",
            400,
            "size=H&kernel=K",
            call(port, "GET", "/api/geometry?size=9&kernel=3&stride=1&padding=-1"),
        ),
        (
            "geometry extra",
            400,
            "size=H&kernel=K",
            call(port, "GET", "/api/geometry?size=9&kernel=3&stride=1&padding=0&x=1"),
        ),
    ]


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
        ("POST", "/api/explain", {**drawing(digits[1]), "layer": 3, "position": [4, 6, 6]}),
        ("POST", "/api/explain", {"sample": 9, "layer": -1, "position": [0, 14, 14], "what": "gradient", "label": 2}),
        ("POST", "/api/backward", {**drawing(digits[2]), "label": 5}),
        ("POST", "/api/teach", {**drawing(digits[3]), "label": 8, "lr": 0.02}),
        ("GET", "/api/geometry?size=13&kernel=4&stride=3&padding=1", None),
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
