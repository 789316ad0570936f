"""Accuracy and time of whole `nanocnn train` commands, presets alternated seed by seed in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_presets.py \
        [--presets default,classic] [--seeds 0,1,2,3,4] [--log presets.log]

Each run is a fresh process, `python -m nanocnn train --preset P --seed S --no-progress`, timed from start
to exit (loading the data, training, evaluating, writing the run folder); for every seed the presets run one
after the other, so a slow spell of the shared machine falls on all of them. Prints one line per run and
then, per preset, the median and range of the times, the lowest and highest test accuracy, and the ratio of
each preset's median time to the first preset's. ``--log`` also appends every line to a file.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from threadpoolctl import threadpool_info

import nanocnn as nc


def cpu_name():
    """The CPU's model name (Linux), else what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def train(preset, seed, folder):
    """(seconds, test accuracy) of one whole `nanocnn train` process."""
    command = [sys.executable, "-m", "nanocnn", "train", "--preset", preset, "--seed", str(seed)]
    start = time.perf_counter()
    done = subprocess.run([*command, "--no-progress", "--out", folder], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()
    if done.returncode != 0 or not last.startswith("test accuracy: "):
        raise SystemExit(f"{' '.join(command)} failed: {last}")
    return seconds, float(last.split()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="default,classic", help="comma-separated (default: default,classic)")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated (default: 0,1,2,3,4)")
    parser.add_argument("--log", help="also append the output to this file")
    args = parser.parse_args()
    presets, seeds = args.presets.split(","), [int(s) for s in args.seeds.split(",")]

    def say(line):
        print(line, flush=True)
        if args.log:
            with open(args.log, "a") as f:
                f.write(line + "\n")

    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    say(
        f"{time.strftime('%Y-%m-%d %H:%M')} machine: {cpu_name()}, "
        f"{os.cpu_count()} CPUs; Python {platform.python_version()}, numpy {np.__version__}, nanocnn {nc.__version__}; "
        + ", ".join(f"BLAS {i['internal_api']} {i.get('version')} kernel {i.get('architecture')}" for i in blas)
        + f"; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}"
    )
    results = {p: [] for p in presets}
    with tempfile.TemporaryDirectory() as folder:
        for seed in seeds:
            for preset in presets:
                seconds, acc = train(preset, seed, os.path.join(folder, f"{preset}-{seed}"))
                results[preset].append((seconds, acc))
                say(f"  {preset:<8} seed {seed}: test accuracy {acc:.4f}, {seconds:.1f} s")
    first = statistics.median(t for t, _ in results[presets[0]])
    for preset, runs in results.items():
        times, accs = [t for t, _ in runs], [a for _, a in runs]
        say(
            f"{preset:<8} seeds {args.seeds}: accuracy {min(accs):.4f}-{max(accs):.4f}, time median "
            f"{statistics.median(times):.1f} s ({min(times):.1f}-{max(times):.1f}), "
            f"{statistics.median(times) / first:.2f}x {presets[0]}'s"
        )


if __name__ == "__main__":
    main()
