"""Training and inference speed of nanocnn beside PyTorch on the CPU, measured side by side in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_train.py [--repeats 3] [--rss]

For (a) the article's network with ReLU (conv 16x8x8, ReLU, conv 8x4x4 stride 2, ReLU, linear) at batch
64 with Adam, and (b) the default preset with its own batch size and optimizer, it trains one epoch of the
bundled MNIST with nanocnn and with PyTorch (same architecture, same initial weights, same batches, same
thread count), alternating the two ``--repeats`` times, and prints the median epoch times and their ratio.
Then inference images/s on the 10,000 test images, achieved GFLOP/s beside this machine's own float32
matrix-product ceiling, the BLAS kernel that ran, the fast layers against reference.py on the seed
network, and with --rss the peak resident memory of a default `nanocnn train`.
PyTorch is optional: without it only nanocnn's figures are printed.
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

import nanocnn as nc
from nanocnn import reference
from nanocnn.data import batches, load_dataset
from nanocnn.parallel import DataParallel
from nanocnn.presets import PRESETS, build_seed
from nanocnn.train import predict_proba, train_step

try:
    import torch
except ImportError:
    torch = None


def article_relu(input_shape, num_classes, rng):
    return nc.Sequential(
        nc.Conv2d(1, 16, 8, rng=rng),
        nc.ReLU(),
        nc.Conv2d(16, 8, 4, stride=2, rng=rng),
        nc.ReLU(),
        nc.Flatten(),
        nc.Linear(8 * 9 * 9, num_classes, rng=rng),
    )


def to_torch(model):
    """The same network in PyTorch, with our weights copied in."""
    layers = []
    for layer in model.layers:
        if isinstance(layer, nc.Conv2d):
            t = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding)
        elif isinstance(layer, nc.Linear):
            t = torch.nn.Linear(layer.in_features, layer.out_features)
        elif isinstance(layer, nc.MaxPool2d):
            t = torch.nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding)
        else:
            t = {nc.ReLU: torch.nn.ReLU, nc.Flatten: torch.nn.Flatten}[type(layer)]()
        if layer.parameters():
            with torch.no_grad():
                t.weight.copy_(torch.from_numpy(layer.weight.data))
                t.bias.copy_(torch.from_numpy(layer.bias.data))
        layers.append(t)
    return torch.nn.Sequential(*layers)


def epoch_nanocnn(model, optimizer, images, labels, order, threads):
    """nanocnn's own training path: each batch's parts in ``threads`` threads (nanocnn.parallel)."""
    start = time.perf_counter()
    with DataParallel(model, threads) as parallel:
        for idx in order:
            parallel.forward_backward(train_step, images[idx], labels[idx])
            optimizer.step()
            optimizer.zero_grad()
    return time.perf_counter() - start


def epoch_torch(model, optimizer, images, labels, order):
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    start = time.perf_counter()
    for idx in order:
        i = torch.from_numpy(idx)
        loss = torch.nn.functional.cross_entropy(model(x[i]), y[i])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def inference_nanocnn(model, images, threads):
    """Images/s of predict_proba, which picks its own batch size."""
    start = time.perf_counter()
    predict_proba(model, images, threads=threads)
    return len(images) / (time.perf_counter() - start)


def inference_torch(model, images):
    """Images/s of PyTorch at the best of several batch sizes (its best, to keep the comparison honest)."""
    x = torch.from_numpy(images)
    best = 0
    for batch in (32, 128, 500):
        start = time.perf_counter()
        with torch.no_grad():
            for i in range(0, len(x), batch):
                torch.softmax(model(x[i : i + batch]), dim=1)
        best = max(best, len(images) / (time.perf_counter() - start))
    return best


def train_macs(model, shape):
    """Multiply-adds per training image: forward, weight gradients, and input gradients but the first layer's."""
    forward, first = model.macs(shape), model.layers[0].macs(shape)
    return 3 * forward - first


def matmul_ceiling(n=2048, repeats=5):
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def compare(name, build, batch_size, optimizer, lr, data, repeats, threads):
    rng = np.random.default_rng(0)
    model = build(data.input_shape, data.num_classes, rng)
    reference_model = to_torch(model) if torch else None
    ours = nc.Adam(model.parameters(), lr=lr) if optimizer == "adam" else nc.SGD(model.parameters(), lr=lr)
    if torch:
        make = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
        theirs = make(reference_model.parameters(), lr=lr)
    n = len(data.train.labels)
    ours_t, theirs_t = [], []
    for r in range(repeats):
        order = list(batches(n, batch_size, np.random.default_rng(r)))
        ours_t.append(epoch_nanocnn(model, ours, data.train.images, data.train.labels, order, threads))
        if torch:
            theirs_t.append(epoch_torch(reference_model, theirs, data.train.images, data.train.labels, order))
    med = statistics.median(ours_t)
    gflops = 2 * train_macs(model, data.input_shape) * n / med / 1e9
    print(f"\n({name}) batch {batch_size}, {optimizer}, {n:,} images, {repeats} alternating repeats")
    print(f"  nanocnn epoch: median {med:.2f} s  (all: {', '.join(f'{t:.2f}' for t in ours_t)})  {gflops:.1f} GFLOP/s")
    test = data.test.images
    if torch:
        tmed = statistics.median(theirs_t)
        print(f"  PyTorch epoch: median {tmed:.2f} s  (all: {', '.join(f'{t:.2f}' for t in theirs_t)})")
        print(f"  ratio nanocnn / PyTorch: {med / tmed:.2f}x")
        reference_model.eval()
    ours_inf, theirs_inf = [], []
    for _ in range(repeats):  # alternated, like the epochs
        ours_inf.append(inference_nanocnn(model, test, threads))
        if torch:
            theirs_inf.append(inference_torch(reference_model, test))
    ours_inf = statistics.median(ours_inf)
    if torch:
        theirs_inf = statistics.median(theirs_inf)
        print(
            f"  inference on {len(test):,} test images: nanocnn {ours_inf:,.0f} img/s, PyTorch {theirs_inf:,.0f} "
            f"img/s (its best batch size), throughput ratio nanocnn / PyTorch {ours_inf / theirs_inf:.2f}"
        )
    else:
        print(f"  inference on {len(test):,} test images: nanocnn {ours_inf:,.0f} img/s")


def seed_fast_vs_reference(data, images=32):
    """One forward + backward of the seed network on ``images`` images: fast layers vs reference.py loops."""
    model = build_seed(data.input_shape, data.num_classes)
    conv1, conv2, fc = model[0], model[1], model[3]
    x, y = data.train.images[:images].astype(np.float32), data.train.labels[:images]

    def fast():
        _, d = nc.softmax_cross_entropy(model(x), y)
        model.backward(d, input_grad=False)
        model.zero_grad()

    def slow():
        w1, w2 = conv1.weight.data, conv2.weight.data
        h1 = reference.conv2d_forward(x, w1, conv1.bias.data)
        h2 = reference.conv2d_forward(h1, w2, conv2.bias.data, (2, 2))
        logits = reference.linear_forward(h2.reshape(len(x), -1), fc.weight.data, fc.bias.data)
        _, d = reference.softmax_cross_entropy(logits, y)
        dh2, _, _ = reference.linear_backward(h2.reshape(len(x), -1), fc.weight.data, d)
        dh1, _, _ = reference.conv2d_backward(h1, w2, dh2.reshape(h2.shape), (2, 2))
        reference.conv2d_backward(x, w1, dh1)

    timings = {}
    for name, fn in (("fast", fast), ("reference", slow)):
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - start)
        timings[name] = statistics.median(runs)
    print(
        f"\nseed network, forward + backward of {images} images: fast {timings['fast'] * 1e3:.1f} ms, "
        f"reference.py {timings['reference'] * 1e3:.0f} ms, {timings['reference'] / timings['fast']:.0f}x faster"
    )


def peak_rss_of_default_train():
    """Peak RSS of a default `nanocnn train`, read by a small intermediate process.

    Linux keeps a process's pre-exec high-water mark, so a child forked straight from this (large)
    process would report this process's size; the tiny wrapper forks the training run instead.
    """
    with tempfile.TemporaryDirectory() as out:
        wrapper = (
            "import resource, subprocess, sys, time; t = time.perf_counter(); "
            "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t, "
            "(r.stdout.strip().splitlines() or [r.stderr.strip()])[-1], sep='|')"
        )
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                wrapper,
                sys.executable,
                "-m",
                "nanocnn",
                "train",
                "--no-progress",
                "--out",
                out + "/run",
            ],
            capture_output=True,
            text=True,
        )
    peak_kb, seconds, last = result.stdout.strip().split("|")
    print(f"\ndefault `nanocnn train`: peak RSS {int(peak_kb) / 1024:.0f} MB, {float(seconds):.0f} s, {last}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit-train", type=int, default=None, help="images per epoch (default: all 60,000)")
    parser.add_argument("--rss", action="store_true", help="also measure the peak RSS of a default `nanocnn train`")
    args = parser.parse_args()

    from threadpoolctl import threadpool_info

    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    threads = blas[0]["num_threads"] if blas else os.cpu_count()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"Python {platform.python_version()}, "
        f"numpy {np.__version__}, nanocnn {nc.__version__}, PyTorch {torch.__version__ if torch else 'not installed'}"
    )
    for info in blas:
        print(
            f"BLAS: {info['internal_api']} {info.get('version')}, kernel {info.get('architecture')}, "
            f"{info['num_threads']} threads"
        )
    print(
        "OPENBLAS_CORETYPE=" + os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        "OPENBLAS_L2_SIZE=" + os.environ.get("OPENBLAS_L2_SIZE", "(unset)"),
    )
    print(f"nanocnn threads: {threads} (each batch's parts in parallel, BLAS at 1 thread meanwhile)")
    if torch:
        torch.set_num_threads(threads)
        print(f"PyTorch threads: {torch.get_num_threads()}")
    print(f"float32 matmul ceiling (2048^3, numpy): {matmul_ceiling():.0f} GFLOP/s")

    data = load_dataset(limit_train=args.limit_train)
    default = PRESETS["default"]
    compare("a: article network + ReLU", article_relu, 64, "adam", 1e-3, data, args.repeats, threads)
    compare(
        "b: default preset",
        default.build,
        default.batch_size,
        default.optimizer,
        default.lr,
        data,
        args.repeats,
        threads,
    )
    seed_fast_vs_reference(data)
    if args.rss:
        peak_rss_of_default_train()


if __name__ == "__main__":
    main()
