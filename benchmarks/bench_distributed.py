"""Training with MPI on this machine, its communication cost, and a model of the speed-up on K machines.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_distributed.py [--repeats 5] [--steps 150]

(1) The default preset at batch 64 (2 parts of 32 per step), alternated ``--repeats`` times: 2 MPI
ranks x 1 thread (`mpiexec -n 2`), 1 process x 2 threads, and 1 process x 1 thread (the compute time
per image on one core). Images/s over ``--steps`` training steps after 10 warm-up steps; for the
ranks, the time per step spent in the gradient exchange (waiting for the slower rank included).
(2) The exchange alone between 2 ranks, over shared memory and over TCP on the loopback interface: the
exact exchange (``MPIWorld.reduce``: the sum passed along the ranks in part order, then broadcast, and
the parts' logits and losses gathered), an Allgatherv of every rank's part (the simpler exact design
it replaced) and a plain Allreduce (not exact), for the default preset (28,938 parameters) and a 9.3x
larger network (conv 64 and 128 filters: 269,322 parameters), whose compute time per image is
measured too. (3) The speed-up model on K machines from those figures, printed as
the table for benchmarks/README.md. Needs mpi4py and mpiexec (pip install '.[mpi]').
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import nanocnn as nc
from nanocnn.data import batches, load_dataset
from nanocnn.nn import Adam
from nanocnn.parallel import DataParallel
from nanocnn.parallel.mpi import SEGMENT
from nanocnn.train import train_step
from nanocnn.train.presets import build_default

TCP = dict(MPIR_CVAR_NOLOCAL="1", MPIR_CVAR_CH4_NETMOD="ofi", FI_PROVIDER="tcp", FI_TCP_IFACE="lo")
PART = 32
# Networks between machines (assumed, not measured here): one-way latency (s) and bandwidth (bytes/s).
NETWORKS = {"10 Gb/s Ethernet": (30e-6, 1.25e9), "100 Gb/s InfiniBand": (2e-6, 12.5e9)}


def build_wide(input_shape, num_classes, rng):
    """The default preset's shape with 64 and 128 filters: 269,450 parameters for MNIST (9.3x)."""
    C, H, W = input_shape
    return nc.Sequential(
        nc.Conv2d(C, 64, 5, padding=2, rng=rng),
        nc.ReLU(),
        nc.MaxPool2d(2),
        nc.Conv2d(64, 128, 5, padding=2, rng=rng),
        nc.ReLU(),
        nc.MaxPool2d(2),
        nc.Flatten(),
        nc.Linear(128 * (H // 4) * (W // 4), num_classes, rng=rng),
    )


NETS = {"default": build_default, "wide": build_wide}


def world_or_local():
    if "PMI_SIZE" in os.environ:
        from nanocnn.parallel.mpi import connect

        return connect()
    from nanocnn.parallel import LOCAL

    return LOCAL


def worker_train(args):
    """Train ``args.steps`` steps (after 10 to warm up); print images/s and exchange ms per step as JSON (rank 0)."""
    from threadpoolctl import threadpool_info

    world = world_or_local()
    warmup = 10
    data = load_dataset(limit_train=(args.steps + warmup) * args.batch_size, limit_test=10)
    rng = np.random.default_rng(0)
    model = NETS[args.net](data.input_shape, data.num_classes, rng)
    optimizer = Adam(model.parameters(), 1e-3)
    order = list(batches(len(data.train.labels), args.batch_size, rng))
    threads = min(args.threads, max(1, len(world.share(args.batch_size // PART))))
    with DataParallel(model, threads, world) as parallel:
        for step, idx in enumerate(order):
            if step == warmup:
                start, exchanged = time.perf_counter(), getattr(world, "exchange_seconds", 0.0)
            parallel.forward_backward(train_step, data.train.images[idx], data.train.labels[idx])
            optimizer.step()
            optimizer.zero_grad()
        seconds = time.perf_counter() - start
        blas = [
            f"{i['internal_api']} {i.get('version')} {i.get('architecture')} ({i['num_threads']} thread)"
            for i in threadpool_info()
            if i["user_api"] == "blas"
        ]
    exchange = (getattr(world, "exchange_seconds", 0.0) - exchanged) / args.steps
    if world.is_root:
        print(
            json.dumps(
                dict(
                    img_s=args.steps * args.batch_size / seconds,
                    exchange_ms=exchange * 1e3,
                    params=sum(p.data.size for p in model.parameters()),
                    blas=blas,
                )
            )
        )


def exchanges(world, params):
    """The three exchanges of one gradient per rank, and one of 4 bytes (the latency), as functions of no arguments."""
    from mpi4py import MPI

    grads = [[np.random.default_rng(world.rank).random(p.shape, dtype=np.float32) for p in params]]
    results = [(np.zeros((PART, 10), np.float32), 0.5)]
    flat = np.concatenate([g.ravel() for g in grads[0]])
    total, every = np.empty_like(flat), np.empty(world.size * flat.size, flat.dtype)
    return {
        "latency": lambda: world.comm.Allgatherv(flat[:1], [every, [1] * world.size]),
        "exact": lambda: world.reduce(params, results, grads, world.size),
        "allgatherv": lambda: world.comm.Allgatherv(flat, [every, [flat.size] * world.size]),
        "allreduce": lambda: world.comm.Allreduce(flat, total, MPI.SUM),
    }


def worker_comm(args):
    """Median seconds of the exact exchange, an Allgatherv and an Allreduce for each network (rank 0 prints)."""
    world = world_or_local()
    out = {}
    for net, build in NETS.items():
        params = build((1, 28, 28), 10, np.random.default_rng(0)).parameters()
        ops = exchanges(world, params)
        times = {name: [] for name in ops}
        for _ in range(args.comm_repeats):
            for name, op in ops.items():
                world.comm.Barrier()
                t0 = time.perf_counter()
                op()
                times[name].append(time.perf_counter() - t0)
        out[net] = {k: statistics.median(v[10:]) for k, v in times.items()}
        out[net]["params"] = sum(p.data.size for p in params)
    if world.is_root:
        print(json.dumps(out))


def job(argv, ranks=None, env=None):
    """Run this script as a worker (under mpiexec with ``ranks``); returns its JSON line."""
    command = [sys.executable, __file__, *argv]
    if ranks:
        command = [os.path.join(os.path.dirname(sys.executable), "mpiexec"), "-n", str(ranks), *command]
    done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, **(env or {})), timeout=600)
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def fit_link(figures):
    """(latency s, bandwidth bytes/s) of this machine's link: an Allgatherv of 4 bytes per rank takes the latency,
    the Allgatherv of the wide network's gradient (one per rank) the latency plus B / bandwidth."""
    wide = figures["wide"]
    alpha = wide["latency"]
    return alpha, 4 * wide["params"] / max(wide["allgatherv"] - alpha, 1e-9)


def exchange_time(design, K, B, alpha, beta, threads):
    """Seconds per step to exchange the gradients of K ranks of ``threads`` parts each (B bytes per gradient).

    chain (as implemented, exact): the sum passes rank to rank in S segments of 256 KB, pipelined, then a
    broadcast (the better of binomial and scatter + allgather) and a small allgather of logits and losses.
    allgatherv (exact, the simpler design): every rank receives every other rank's parts, ring-wise.
    allreduce (not exact): each rank sums its own parts, then a ring Allreduce. No overlap with compute.
    """
    S, log = max(1, math.ceil(B / (4 * SEGMENT))), math.ceil(math.log2(K))
    if design == "chain":
        bcast = min(log * (alpha + B / beta), log * alpha + 2 * (K - 1) / K * B / beta)
        return (K - 1 + S - 1) * (alpha + B / S / beta) + bcast + log * alpha
    if design == "allgatherv":
        return (K - 1) * (alpha + threads * B / beta)
    return 2 * (K - 1) * alpha + 2 * (K - 1) / K * B / beta


def speedup(K, design, compute, B, alpha, beta, threads):
    return K * compute / (compute + exchange_time(design, K, B, alpha, beta, threads))


def model_table(t_img, links, threads=8, ks=(2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)):
    """Markdown rows of the speed-up model: K machines, one rank of ``threads`` threads each, one part per thread."""
    designs = ("chain", "allgatherv", "allreduce")
    lines = [
        "| link (latency, bandwidth) | network | compute per step | exchange > compute from K = chain / "
        "allgatherv / allreduce | speed-up at K = 4, 16, 64, 256: chain (allreduce) |",
        "| --- " * 5 + "|",
    ]
    for link, (alpha, beta) in links.items():
        for net, (t, params) in t_img.items():
            B, compute = 4 * params, PART * t  # the parts run at once on the threads: a step takes one part's time
            first = [
                next((str(K) for K in ks if exchange_time(d, K, B, alpha, beta, threads) > compute), f"> {ks[-1]}")
                for d in designs
            ]
            shown = ", ".join(
                f"{speedup(K, 'chain', compute, B, alpha, beta, threads):.1f}x "
                f"({speedup(K, 'allreduce', compute, B, alpha, beta, threads):.1f}x)"
                for K in (4, 16, 64, 256)
            )
            lines.append(
                f"| {link} ({alpha * 1e6:.0f} us, {beta / 1e9:.2f} GB/s) | {net}, {params:,} parameters, "
                f"{B / 1e6:.2f} MB | {compute * 1e3:.1f} ms | {' / '.join(first)} | {shown} |"
            )
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=["train", "comm"])
    parser.add_argument("--net", choices=list(NETS), default="default")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--comm-repeats", type=int, default=300)
    args = parser.parse_args()
    if args.worker:
        return {"train": worker_train, "comm": worker_comm}[args.worker](args)

    common = ["--steps", str(args.steps), "--batch-size", str(args.batch_size)]
    runs = {"2 ranks x 1 thread": [], "1 process x 2 threads": [], "1 process x 1 thread": []}
    for _ in range(args.repeats):  # alternated, as the machine is shared and noisy
        runs["2 ranks x 1 thread"].append(job(["--worker", "train", "--threads", "1", *common], ranks=2))
        runs["1 process x 2 threads"].append(job(["--worker", "train", "--threads", "2", *common]))
        runs["1 process x 1 thread"].append(job(["--worker", "train", "--threads", "1", *common]))
    print(f"BLAS: {runs['1 process x 1 thread'][0]['blas']}")
    print(f"default preset, batch {args.batch_size}, {args.steps} steps, {args.repeats} alternated runs (img/s):")
    medians = {}
    for name, results in runs.items():
        rates = [r["img_s"] for r in results]
        medians[name] = statistics.median(rates)
        exchange = [r["exchange_ms"] for r in results]
        print(
            f"  {name}: median {medians[name]:,.0f} img/s (runs {', '.join(f'{v:,.0f}' for v in rates)})"
            + (
                f"; exchange {statistics.median(exchange):.3f} ms per step (median), "
                f"{statistics.median(exchange) / (args.batch_size / medians[name] * 1e3):.1%} of a step"
                if "ranks" in name
                else ""
            )
        )
    print(f"  2 ranks / 1 process x 2 threads: {medians['2 ranks x 1 thread'] / medians['1 process x 2 threads']:.2f}")

    wide = [
        job(["--worker", "train", "--threads", "1", "--net", "wide", "--steps", str(max(20, args.steps // 5))])
        for _ in range(3)
    ]
    t_img = {
        "default": (1 / medians["1 process x 1 thread"], runs["1 process x 1 thread"][0]["params"]),
        "wide": (1 / statistics.median(r["img_s"] for r in wide), wide[0]["params"]),
    }
    print(
        f"compute per image on one core: default {t_img['default'][0] * 1e3:.3f} ms, "
        f"wide {t_img['wide'][0] * 1e3:.3f} ms"
    )
    comm = {
        "shared memory": job(["--worker", "comm", "--comm-repeats", str(args.comm_repeats)], ranks=2),
        "TCP on loopback": job(["--worker", "comm", "--comm-repeats", str(args.comm_repeats)], ranks=2, env=TCP),
    }
    for transport, figures in comm.items():
        print(
            f"exchange between 2 ranks over {transport} (median of {args.comm_repeats}; latency "
            f"{figures['wide']['latency'] * 1e6:.0f} us): "
            + "; ".join(
                f"{net} {f['params']:,} parameters: exact {f['exact'] * 1e6:.0f} us, Allgatherv "
                f"{f['allgatherv'] * 1e6:.0f} us, Allreduce {f['allreduce'] * 1e6:.0f} us"
                for net, f in figures.items()
            )
        )
    links = {f"this machine, {transport} (measured)": fit_link(figures) for transport, figures in comm.items()}
    print(
        "speed-up model: K machines, one rank of 8 threads each (at most 8: parallel.MAX_THREADS), global batch "
        "32 x 8 x K:"
    )
    for line in model_table(t_img, links | NETWORKS):
        print(line)


if __name__ == "__main__":
    main()
