"""Training and inference speed of nanocnn beside PyTorch and onnxruntime on the CPU, side by side in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_train.py \
        [--repeats 3] [--inference-repeats 9] [--rss]

For (a) the article's network with ReLU (conv 16x8x8, ReLU, conv 8x4x4 stride 2, ReLU, linear) at batch
64 with Adam, (b) the classic preset (0.2's default), (c) the default preset and, asked for, (d) the best
preset, each preset at its own batch size, part size and learning rate, it trains one epoch of the bundled
MNIST with nanocnn (the path `nanocnn train` takes: each batch's parts on the threads) and with PyTorch (the
same network rebuilt from nanocnn's pytorch_spec, the same initial weights, batches and thread count; batch
norm in PyTorch normalises the whole batch, nanocnn each part), alternating the two ``--repeats`` times, and
prints the median epoch times and their ratio. Then inference on the 10,000 test images in
``--inference-repeats`` alternated rounds: nanocnn's predict_proba and a plain eval-mode ``model(x)`` on all
10,000 at once, PyTorch and onnxruntime (running nanocnn's own ONNX export) at batch 64, 256 and 10,000 in
every round, each counted at its batch size with the best median. Then a
fresh model's first ``model(x)`` on the 10,000 images in a new process (time; memory in a second one), achieved
GFLOP/s beside this machine's float32 matrix-product ceiling, the BLAS kernel, the fast layers against
reference.py, and with --rss the peak resident memory of a default `nanocnn train`.
PyTorch and onnxruntime are optional: without them only nanocnn's figures are printed.
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
from nanocnn.data import batches, load_dataset
from nanocnn.io.export import pytorch_spec
from nanocnn.nn import reference
from nanocnn.parallel import DataParallel
from nanocnn.train import train_step
from nanocnn.train.config import Config
from nanocnn.train.evaluation import predict_proba
from nanocnn.train.presets import PRESETS, build_seed, resolve

try:
    import torch
except ImportError:
    torch = None
try:
    import onnxruntime
except ImportError:
    onnxruntime = None

BATCHES = (64, 256, 10_000)  # inference batch sizes PyTorch and onnxruntime are tried at; their best counts
PAUSE = 0.3  # seconds of quiet before each inference runner: the previous one's thread pool may still spin


def article_relu(input_shape, num_classes, rng):
    return nc.Sequential(
        nc.Conv2d(1, 16, 8, rng=rng),
        nc.ReLU(),
        nc.Conv2d(16, 8, 4, stride=2, rng=rng),
        nc.ReLU(),
        nc.Flatten(),
        nc.Linear(8 * 9 * 9, num_classes, rng=rng),
    )


PRESET_OF = {"b": "classic", "c": "default", "d": "best"}  # network letter -> preset
NETWORKS = {"a": article_relu} | {k: PRESETS[name].build for k, name in PRESET_OF.items()}
TITLES = {"a": "article network + ReLU"} | {k: f"{name} preset" for k, name in PRESET_OF.items()}


def to_torch(model):
    """The same network in PyTorch, rebuilt from its pytorch_spec (the README's rebuild), our state copied in."""

    class Residual(torch.nn.Module):
        def __init__(self, block, shortcut=None):
            super().__init__()
            self.block, self.shortcut = block, shortcut

        def forward(self, x):
            return self.block(x) + (x if self.shortcut is None else self.shortcut(x))

    def build(name, kwargs):
        if name == "Sequential":
            return torch.nn.Sequential(*(build(*layer) for layer in kwargs))
        if name == "Residual":
            return Residual(build(*kwargs["block"]), kwargs["shortcut"] and build(*kwargs["shortcut"]))
        return getattr(torch.nn, name)(**kwargs)

    theirs = build("Sequential", pytorch_spec(model))
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()})
    return theirs


def epoch_nanocnn(model, optimizer, images, labels, order, threads, part, step=train_step):
    """nanocnn's own training path: each batch's parts (``part`` images at least) in ``threads`` threads."""
    start = time.perf_counter()
    with DataParallel(model, threads, part=part) as parallel:
        for idx in order:
            parallel.forward_backward(step, images[idx], labels[idx])
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


def rate(fn, images):
    """Images/s of one call of fn(images)."""
    start = time.perf_counter()
    fn(images)
    return len(images) / (time.perf_counter() - start)


def batch_rates(run, images):
    """Images/s at each of BATCHES: run(x) on consecutive slices of that size -> {batch: img/s}."""
    rates = {}
    for batch in BATCHES:
        start = time.perf_counter()
        for i in range(0, len(images), batch):
            run(images[i : i + batch])
        rates[batch] = len(images) / (time.perf_counter() - start)
    return rates


def onnx_session(model, input_shape, threads, folder):
    """An onnxruntime session of nanocnn's own ONNX export of ``model``, on ``threads`` threads."""
    path = nc.export_onnx(model, os.path.join(folder, "model.onnx"), input_shape)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


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


def compare(name, data, repeats, inference_repeats, threads):
    """Train one epoch of network ``name`` (a key of NETWORKS) both ways, then inference every way, alternated.
    A preset trains at its own batch size, part size and peak learning rate; the article network at batch 64."""
    preset = PRESET_OF.get(name)
    settings = resolve(Config(preset=preset) if preset else Config(preset="classic", batch_size=64, lr=1e-3))
    batch_size, lr, part = settings.batch_size, settings.lr, settings.part_size
    rng = np.random.default_rng(0)
    model = NETWORKS[name](data.input_shape, data.num_classes, rng)
    theirs_model = to_torch(model) if torch else None
    ours = nc.Adam(model.parameters(), lr=lr)
    theirs = torch.optim.Adam(theirs_model.parameters(), lr=lr) if torch else None
    n = len(data.train.labels)
    times = {"nanocnn": [], "PyTorch": []}
    for r in range(repeats):
        order = list(batches(n, batch_size, np.random.default_rng(r)))
        times["nanocnn"].append(epoch_nanocnn(model, ours, data.train.images, data.train.labels, order, threads, part))
        if torch:
            times["PyTorch"].append(epoch_torch(theirs_model, theirs, data.train.images, data.train.labels, order))
    med = {k: statistics.median(v) for k, v in times.items() if v}
    gflops = 2 * train_macs(model, data.input_shape) * n / med["nanocnn"] / 1e9
    print(
        f"\n({name}) {TITLES[name]}: batch {batch_size} (parts of {part}+), Adam, {n:,} images, "
        f"{repeats} alternated repeats"
    )
    for k, v in times.items():
        if v:
            print(f"  {k} epoch: median {med[k]:.2f} s  (all: {', '.join(f'{t:.2f}' for t in v)})")
    print(f"  nanocnn: {gflops:.1f} GFLOP/s")
    if torch:
        print(f"  training time ratio nanocnn / PyTorch: {med['nanocnn'] / med['PyTorch']:.2f}x")

    inference(name, model, theirs_model, data, inference_repeats, threads)


def inference(name, model, theirs_model, data, repeats, threads):
    """Images/s on the 10,000 test images, every runner once per round, ``repeats`` rounds.

    nanocnn runs predict_proba and one plain eval-mode model(x) on all the images; PyTorch and
    onnxruntime run at each of BATCHES in every round, and count at the batch size whose median is best.
    Every runner gets the same number of samples and the ratio is of medians (a best-of-batches per
    round, as before the fifth round, takes a maximum of several noisy samples and favours them). Each
    runner starts after a pause, as onnxruntime's and OpenMP's idle threads spin for a while after a run
    (predict_proba measured right after onnxruntime: 39,919 img/s, after a 0.5 s pause 42,392, medians of 6).
    """
    test = data.test.images
    model.eval()
    runs = {"nanocnn predict_proba": lambda x: predict_proba(model, x, threads), "nanocnn model(x)": model}
    batched = {}
    with tempfile.TemporaryDirectory() as folder:
        if torch:
            theirs_model.eval()

            def torch_run(x):
                with torch.no_grad():
                    return theirs_model(torch.from_numpy(x))

            batched["PyTorch"] = torch_run
        if onnxruntime:
            batched["onnxruntime"] = onnx_session(model, data.input_shape, threads, folder)
        samples = {k: [] for k in runs} | {(k, b): [] for k in batched for b in BATCHES}
        for _ in range(repeats):
            for k, run in runs.items():
                time.sleep(PAUSE)
                samples[k].append(rate(run, test))
            for k, run in batched.items():
                time.sleep(PAUSE)
                for b, v in batch_rates(run, test).items():
                    samples[k, b].append(v)
    medians = {k: statistics.median(v) for k, v in samples.items()}
    rates, at = {k: medians[k] for k in runs}, {}  # at: the best batch size of PyTorch and onnxruntime
    for k in batched:
        at[k] = max(BATCHES, key=lambda b: medians[k, b])
        rates[k] = medians[k, at[k]]
    print(
        f"  inference on {len(test):,} test images, img/s, medians of {repeats} alternated rounds (PyTorch and "
        f"onnxruntime at their best batch of {', '.join(map(str, BATCHES))} by median):"
    )
    for k, v in rates.items():
        notes = [f"at batch {at[k]}"] if k in at else []
        if k in runs:
            notes += [f"{v / rates[o]:.2f}x {o}" for o in at]
            notes += [f"rounds {min(samples[k]):,.0f}-{max(samples[k]):,.0f}"]
            if "PyTorch" in at:
                paired = [a / b for a, b in zip(samples[k], samples["PyTorch", at["PyTorch"]])]
                notes += [f"round by round {min(paired):.2f}-{max(paired):.2f}x PyTorch"]
        print(f"    {k:<22} {v:>9,.0f}" + (f"   ({'; '.join(notes)})" if notes else ""))
    one_off(name, rates.get("nanocnn predict_proba"))


ONE_OFF = """
import resource, sys, time, tracemalloc
import numpy as np
sys.path.insert(0, {here!r})
from bench_train import NETWORKS
from nanocnn.data import load_dataset
images = load_dataset(with_train=False, num_classes=10).test.images
model = NETWORKS[{name!r}]((1, 28, 28), 10, np.random.default_rng(0)).eval()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if {trace!r}:
    tracemalloc.start()
start = time.perf_counter()
model(images)
seconds = time.perf_counter() - start
peak = tracemalloc.get_traced_memory()[1]
print(len(images) / seconds, peak / 2**20, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024)
"""


def one_off(name, predict_rate=None):
    """A fresh process's first eval-mode model(x) on all 10,000 test images: img/s, then (in a second fresh
    process, as tracemalloc slows every Python allocation down) the memory allocated beyond the input."""
    here = os.path.dirname(os.path.abspath(__file__))
    results = []
    for trace in (False, True):
        code = ONE_OFF.format(here=here, name=name, trace=trace)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        results.append([float(v) for v in out])
    (speed, _, _), (_, traced, rss) = results
    ratio = f" ({speed / predict_rate:.2f}x predict_proba's median above)" if predict_rate else ""
    print(
        f"  a fresh model's first model(x) on 10,000 images, new process: {speed:,.0f} img/s{ratio}; allocated "
        f"beyond the input (another fresh process): peak {traced:.1f} MiB (tracemalloc), resident memory grew "
        f"{rss:.0f} MiB"
    )


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
    wrapper = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t, "
        "(r.stdout.strip().splitlines() or [r.stderr.strip()])[-1], sep='|')"
    )
    with tempfile.TemporaryDirectory() as out:
        train = [sys.executable, "-m", "nanocnn", "train", "--no-progress", "--out", out + "/run"]
        result = subprocess.run([sys.executable, "-c", wrapper, *train], capture_output=True, text=True)
    peak_kb, seconds, last = result.stdout.strip().split("|")
    print(f"\ndefault `nanocnn train`: peak RSS {int(peak_kb) / 1024:.0f} MB, {float(seconds):.0f} s, {last}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--inference-repeats", type=int, default=9, help="alternated inference rounds (default: 9; ~3 s each)"
    )
    parser.add_argument("--limit-train", type=int, default=None, help="images per epoch (default: all 60,000)")
    parser.add_argument(
        "--networks", default="abc", help="which of a, b (classic), c (default) and d (best); default: abc"
    )
    parser.add_argument("--rss", action="store_true", help="also measure the peak RSS of a default `nanocnn train`")
    args = parser.parse_args()

    from threadpoolctl import threadpool_info

    from nanocnn.parallel import default_threads

    threads = default_threads()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"Python {platform.python_version()}, numpy {np.__version__}, nanocnn {nc.__version__}, "
        f"PyTorch {torch.__version__ if torch else 'not installed'}, "
        f"onnxruntime {onnxruntime.__version__ if onnxruntime else 'not installed'}"
    )
    for info in threadpool_info():
        if info["user_api"] == "blas":
            print(
                f"BLAS: {info['internal_api']} {info.get('version')}, kernel {info.get('architecture')}, "
                f"{info['num_threads']} threads outside nanocnn (nanocnn holds it at 1)"
            )
    print(
        "OPENBLAS_CORETYPE=" + os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        "OPENBLAS_L2_SIZE=" + os.environ.get("OPENBLAS_L2_SIZE", "(unset)"),
    )
    print(f"nanocnn threads: {threads}")
    if torch:
        torch.set_num_threads(threads)
        print(f"PyTorch threads: {torch.get_num_threads()}")
    print(f"float32 matmul ceiling (2048^3, numpy): {matmul_ceiling():.0f} GFLOP/s")

    data = load_dataset(limit_train=args.limit_train)
    for name in args.networks:
        compare(name, data, args.repeats, args.inference_repeats, threads)
    seed_fast_vs_reference(data)
    if args.rss:
        peak_rss_of_default_train()


if __name__ == "__main__":
    main()
