"""Where a training step's time goes, nanocnn beside PyTorch: each layer, the products alone, 1 and 2 threads.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_layers.py \
        [--preset default] [--rounds 30] [--steps 60]

1. Each top-level layer's forward and backward on one part (the preset's part size) on one thread, nanocnn
   and PyTorch (the same network and weights, bench_train.to_torch), alternated round by round; medians.
2. For each convolution, the multiply-adds of its forward done as one bare numpy product with no copying at
   all, (F, C*KH*KW) @ (C*KH*KW, OH*OW*N) or its transpose, whichever is faster: the least time any way
   of computing it with numpy's products can take, beside the layer's own forward in both libraries.
3. Whole training steps (forward, loss, backward, Adam) at the preset's batch size on 1 and 2 threads, both
   libraries alternated: ms per step and how much the second thread gives. For nanocnn also each part's
   wall time against the CPU time its thread got (the difference is time spent waiting for the other
   thread to let go of Python's GIL) and the voluntary context switches per step.
"""

import argparse
import resource
import statistics
import time

import numpy as np

import nanocnn as nc
from bench_train import epoch_nanocnn, epoch_torch, to_torch, torch
from nanocnn.backend.blas import single_thread
from nanocnn.data import batches, load_dataset
from nanocnn.train import train_step
from nanocnn.train.config import Config
from nanocnn.train.presets import PRESETS, resolve


def median_ms(times):
    return statistics.median(times) * 1e3


def layer_times(layers, x, run, grad):
    """One forward and backward through ``layers`` (a list), layer by layer -> ([forward s], [backward s])."""
    forward, backward, saved = [], [], []
    for i, layer in enumerate(layers):
        start = time.perf_counter()
        x, keep = run(layer, x, i > 0)
        forward.append(time.perf_counter() - start)
        saved.append(keep)
    g = grad(x)
    for i in reversed(range(len(layers))):
        start = time.perf_counter()
        g = saved[i](g, i > 0)
        backward.append(time.perf_counter() - start)
    return forward, backward[::-1]


def ours_layer(layer, x, input_grad):
    return layer.forward(x), lambda g, input_grad: layer.backward(g, input_grad=input_grad)


def torch_layer(layer, x, input_grad):
    x = x.detach().requires_grad_(input_grad)  # as in training: nobody needs the images' gradient
    out = layer(x)

    def backward(g, input_grad):
        out.backward(g)
        return x.grad

    return out, backward


def columns(row):
    """[ours fwd, ours bwd, theirs fwd, theirs bwd] ms -> the table's columns (PyTorch's blank without it)."""
    ours = f"{row[0]:11.3f} {row[1]:7.3f}"
    return ours + (f" {row[2]:11.3f} {row[3]:7.3f} {(row[0] + row[1]) / (row[2] + row[3]):6.2f}" if torch else "")


def per_layer(model, theirs, images, rounds):
    """Table 1: medians over ``rounds`` alternated rounds, one thread each."""
    layers, their_layers = list(model.layers), (list(theirs) if torch else [])
    x_torch = torch.from_numpy(images) if torch else None
    times = {"ours": [], "theirs": []}
    if torch:
        torch.set_num_threads(1)
    with single_thread():
        for _ in range(rounds + 1):  # the first round warms both up and is not counted
            times["ours"].append(layer_times(layers, images, ours_layer, lambda y: np.full_like(y, 1 / y.size)))
            if torch:
                times["theirs"].append(
                    layer_times(their_layers, x_torch, torch_layer, lambda y: torch.full_like(y, 1 / y.numel()))
                )
    med = {
        k: [[median_ms([r[p][i] for r in v[1:]]) for i in range(len(layers))] for p in (0, 1)]
        for k, v in times.items()
        if v
    }
    shape = images.shape[1:]
    print(
        f"\n1. Each layer on one part of {len(images)} images, one thread, medians of {rounds} alternated rounds (ms)"
    )
    print(f"  {'layer':<34} {'output':<14} {'nanocnn fwd':>11} {'bwd':>7} {'PyTorch fwd':>11} {'bwd':>7} {'ratio':>6}")
    totals = np.zeros(4)
    for i, layer in enumerate(layers):
        out_shape = layer.output_shape(shape)
        row = [med["ours"][0][i], med["ours"][1][i]] + ([med["theirs"][0][i], med["theirs"][1][i]] if torch else [0, 0])
        totals += row
        name = repr(layer) if len(repr(layer)) <= 34 else type(layer).__name__
        print(f"  {name:<34} {str(out_shape):<14} {columns(row)}")
        shape = out_shape
    print(f"  {'all layers':<49} {columns(totals)}")
    return med


def bare_products(model, images, med, repeats=30):
    """Table 2: each convolution's forward multiply-adds as one bare numpy product, beside both layers' forwards."""
    print("\n2. Each convolution's forward as one bare numpy product (no copies), one thread (ms, GFLOP/s)")
    print(f"  {'layer':<4} {'product':<22} {'bare product':>12} {'GFLOP/s':>8} {'nanocnn fwd':>11} {'PyTorch fwd':>11}")
    rng, shape, N = np.random.default_rng(0), images.shape[1:], len(images)
    with single_thread():
        for i, layer in enumerate(model.layers):
            out_shape = layer.output_shape(shape)
            if isinstance(layer, nc.Conv2d):
                F, C, KH, KW = layer.weight.data.shape
                K, M = C * KH * KW, out_shape[1] * out_shape[2] * N
                best = float("inf")
                for a_shape, b_shape in (((F, K), (K, M)), ((M, K), (K, F))):
                    a, b = (
                        rng.standard_normal(a_shape, dtype=np.float32),
                        rng.standard_normal(b_shape, dtype=np.float32),
                    )
                    out = np.empty((a_shape[0], b_shape[1]), dtype=np.float32)
                    runs = []
                    for _ in range(repeats):
                        start = time.perf_counter()
                        np.matmul(a, b, out=out)
                        runs.append(time.perf_counter() - start)
                    best = min(best, median_ms(runs))
                theirs = f"{med['theirs'][0][i]:11.3f}" if torch else ""
                product = f"{F}x{K} @ {K}x{M}"
                gflops = 2 * F * K * M / best / 1e6
                print(f"  {i:<4} {product:<22} {best:12.3f} {gflops:8.1f} {med['ours'][0][i]:11.3f} {theirs}")
            shape = out_shape


def ours_steps(model, optimizer, data, order, threads, part):
    """ms per step; mean (wall - CPU) ms per part; voluntary context switches per step."""
    waits = []

    def step(replica, x, y, weight):
        wall, cpu = time.perf_counter(), time.thread_time()
        result = train_step(replica, x, y, weight)
        waits.append((time.perf_counter() - wall) - (time.thread_time() - cpu))
        return result

    switches = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw
    elapsed = epoch_nanocnn(model, optimizer, data.images, data.labels, order, threads, part, step)
    switches = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw - switches
    return elapsed / len(order) * 1e3, max(0.0, statistics.mean(waits) * 1e3), switches / len(order)


def theirs_steps(model, optimizer, data, order, threads):
    """PyTorch's ms per step on ``threads`` threads (bench_train's epoch loop over ``order``)."""
    torch.set_num_threads(threads)
    return epoch_torch(model, optimizer, data.images, data.labels, order) / len(order) * 1e3


def scaling(model, theirs, settings, data, steps, rounds=5):
    """Table 3: whole training steps on 1 and 2 threads, alternated, medians of ``rounds``."""
    ours_opt = nc.Adam(model.parameters(), lr=1e-4)
    theirs_opt = torch.optim.Adam(theirs.parameters(), lr=1e-4) if torch else None
    order = list(batches(len(data.labels), settings.batch_size, np.random.default_rng(0)))[:steps]
    runs = {(who, t): [] for who in ("nanocnn", "PyTorch") for t in (1, 2)}
    for _ in range(rounds):
        for t in (1, 2):
            runs["nanocnn", t].append(ours_steps(model, ours_opt, data, order, t, settings.part_size))
            if torch:
                runs["PyTorch", t].append((theirs_steps(theirs, theirs_opt, data, order, t), 0, 0))
    print(
        f"\n3. Training steps at batch {settings.batch_size} (parts of {settings.part_size}), {steps} steps, "
        f"medians of {rounds} alternated rounds"
    )
    med = {k: [statistics.median(r[j] for r in v) for j in range(3)] for k, v in runs.items() if v}
    for who in ("nanocnn", "PyTorch"):
        if (who, 1) in med:
            one, two = med[who, 1][0], med[who, 2][0]
            print(f"  {who:<8} 1 thread {one:6.2f} ms/step, 2 threads {two:6.2f} ms/step: {one / two:.2f}x faster")
    for t in (1, 2):
        ratio = f"; nanocnn / PyTorch {med['nanocnn', t][0] / med['PyTorch', t][0]:.2f}x" if torch else ""
        print(
            f"  {t} thread(s): nanocnn part waits {med['nanocnn', t][1]:.2f} ms (wall - CPU), "
            f"{med['nanocnn', t][2]:.0f} voluntary context switches per step{ratio}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS))
    parser.add_argument("--rounds", type=int, default=30, help="alternated rounds of table 1 (default: 30)")
    parser.add_argument("--steps", type=int, default=60, help="training steps per run in table 3 (default: 60)")
    args = parser.parse_args()
    from threadpoolctl import threadpool_info

    for info in threadpool_info():
        if info["user_api"] == "blas":
            print(f"BLAS: {info['internal_api']} {info.get('version')}, kernel {info.get('architecture')}")
    print(f"numpy {np.__version__}, PyTorch {torch.__version__ if torch else 'not installed'}, preset {args.preset}")
    settings = resolve(Config(preset=args.preset))
    data = load_dataset(limit_train=settings.batch_size * args.steps).train
    model = PRESETS[args.preset].build(data.images.shape[1:], 10, np.random.default_rng(0))
    theirs = to_torch(model) if torch else None
    med = per_layer(model, theirs, np.ascontiguousarray(data.images[: settings.part_size]), args.rounds)
    bare_products(model, data.images[: settings.part_size], med)
    scaling(model, theirs, settings, data, args.steps)


if __name__ == "__main__":
    main()
