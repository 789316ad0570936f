"""What `nanocnn train --live` costs: the default run without it, with it, and with it and 8 clients polling the
page's state as 8 open pages do, alternated round by round in one run; the weights compared bit for bit.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_live.py [--rounds 3] [--epochs 2]

Times are the run's own (the sum of its epochs' seconds from metrics.csv: training and evaluation) and the whole
command's; the ratios are of medians. The clients ask GET /api/live every 1.5 s, as the page does, each on its
own thread.
"""

import argparse
import csv
import http.client
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import nanocnn as nc

POLL = 1.5  # seconds between two requests of one client, as js/live.js


def poll(port, stop, counts, n):
    while not stop.is_set():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/api/live")
            response = conn.getresponse()
            response.read()
            counts[n] += response.status == 200
        except OSError:
            pass  # the run ended and the server with it
        finally:
            conn.close()
        stop.wait(POLL)


def run(folder, epochs, live, clients):
    """One whole `nanocnn train` process -> (its epochs' seconds, the command's seconds, requests answered)."""
    command = [sys.executable, "-m", "nanocnn", "train", "--epochs", str(epochs), "--no-progress", "--out", folder]
    command += ["--live", "--port", "0"] if live else []
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop, counts, threads = threading.Event(), [0] * clients, []
    if live:
        port = int(re.search(r":(\d+)/", proc.stdout.readline())[1])
        threads = [threading.Thread(target=poll, args=(port, stop, counts, n)) for n in range(clients)]
        for t in threads:
            t.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    stop.set()
    for t in threads:
        t.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {err.strip().splitlines()[-1:]}")
    with open(Path(folder) / "metrics.csv", newline="") as f:
        training = sum(float(row["seconds"]) for row in csv.DictReader(f))
    return training, seconds, sum(counts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    variants = {"without --live": (False, 0), "--live": (True, 0), "--live, 8 clients": (True, 8)}
    times = {k: [] for k in variants}
    with tempfile.TemporaryDirectory() as folder:
        for r in range(args.rounds):
            for name, (live, clients) in variants.items():
                training, whole, answered = run(
                    f"{folder}/{r}-{len(times[name])}-{live}-{clients}", args.epochs, live, clients
                )
                times[name].append((training, whole))
                print(
                    f"round {r + 1}: {name:<17} training {training:.2f} s, command {whole:.2f} s"
                    + (f", {answered} requests answered" if clients else ""),
                    flush=True,
                )
        states = [nc.load(path)[0].state_dict() for path in sorted(Path(folder).glob("*/model.npz"))]
        same = all(np.array_equal(s[k], states[0][k]) for s in states for k in s)
    base = statistics.median(t for t, _ in times["without --live"])
    base_whole = statistics.median(w for _, w in times["without --live"])
    for name, values in times.items():
        training, whole = statistics.median(t for t, _ in values), statistics.median(w for _, w in values)
        print(
            f"{name:<17}: training median {training:.2f} s ({training / base:.3f}x), "
            f"command median {whole:.2f} s ({whole / base_whole:.3f}x)"
        )
    print(f"final weights of all {len(states)} runs bit-identical: {same}")


if __name__ == "__main__":
    main()
