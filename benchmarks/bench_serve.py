"""How fast `nanocnn serve` answers: a drawing's prediction with every view, a click's explanation, backward and a
teaching step, over HTTP on loopback, as the page asks for them.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_serve.py [--model MODEL] [--repeats 60]

Starts `python -m nanocnn serve MODEL --port 0 --quiet` (default MODEL: the default preset, freshly initialised:
the time does not depend on the weights), sends each kind of request in turn, alternated, on one keep-alive
connection, and prints the median and the 90th percentile of each, with the answer's size. Targets (issue 19):
a click's answer under 100 ms, backward under 200 ms, a teaching step under 300 ms, for the default model.
"""

import argparse
import http.client
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import nanocnn as nc
from nanocnn.data import bundled_path
from nanocnn.train.presets import build_default


def start(model):
    proc = subprocess.Popen(
        [sys.executable, "-m", "nanocnn", "serve", str(model), "--port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    match = re.fullmatch(r"serving on http://127\.0\.0\.1:(\d+)/\n", line)
    if not match:
        proc.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return proc, int(match[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model.npz or run folder (default: a fresh default preset)")
    parser.add_argument("--repeats", type=int, default=60)
    args = parser.parse_args()
    folder = tempfile.TemporaryDirectory()
    model = args.model
    if model is None:
        model = Path(folder.name) / "model.npz"
        net = build_default((1, 28, 28), 10, np.random.default_rng(0))
        nc.save(net, model, meta={"input_shape": [1, 28, 28], "num_classes": 10})
    digit = np.load(bundled_path())["testimages"][0]
    drawing = np.kron(255 - digit, np.ones((5, 5), np.uint8))  # as the page sends it: 140 x 140, dark on light
    body = {"width": 140, "height": 140, "pixels": drawing.ravel().tolist()}
    requests = {
        "predict, every view": ("/api/predict", {**body, "views": ["input", "saliency", "layers"]}),
        "explain a conv cell": ("/api/explain", {**body, "layer": 3, "position": [5, 7, 7]}),
        "explain a gradient": ("/api/explain", {**body, "layer": 0, "position": [2, 14, 14], "what": "gradient"}),
        "backward": ("/api/backward", {**body, "label": 3}),
        "teach": ("/api/teach", {**body, "label": 3, "lr": 0.01}),
    }
    proc, port = start(model)
    times, sizes = {name: [] for name in requests}, {}
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for round in range(args.repeats + 3):
            for name, (path, payload) in requests.items():
                data = json.dumps(payload)
                start_time = time.perf_counter()
                conn.request("POST", path, data, {"Content-Type": "application/json"})
                answer = conn.getresponse().read()
                seconds = time.perf_counter() - start_time
                if round >= 3:  # the first rounds warm up
                    times[name].append(seconds)
                sizes[name] = len(answer)
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"{'request':24} {'median ms':>10} {'p90 ms':>8} {'answer':>10}")
    for name, samples in times.items():
        ms = sorted(1000 * s for s in samples)
        print(f"{name:24} {statistics.median(ms):10.1f} {ms[int(0.9 * len(ms))]:8.1f} {sizes[name]:>9,}B")


if __name__ == "__main__":
    main()
