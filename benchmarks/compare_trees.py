"""Two versions of nanocnn side by side: the same training steps and inference, alternated, in fresh processes.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/compare_trees.py OLD/src NEW/src --rounds 5

Each round runs one process per tree (alternating which goes first): 100 training steps of the default preset
(batch 64, Adam, 2 threads, as `nanocnn train` runs them), then predict_proba and model(x) on the 10,000 test
images. Prints every round and the medians, and the new tree's medians as a ratio of the old's. For checking
that a change meant to keep the speed (a refactor) does; ``git worktree add /tmp/old <commit>`` gives OLD.
"""

import argparse
import statistics
import subprocess
import sys

WORKER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import nanocnn as nc
from nanocnn.data import batches, load_dataset
from nanocnn.parallel import DataParallel
try:  # the layout since 0.3
    from nanocnn.train import train_step
    from nanocnn.train.evaluation import predict_proba
    from nanocnn.train.presets import build_default
except ImportError:  # 0.2
    from nanocnn.train import train_step
    from nanocnn.inference import predict_proba
    from nanocnn.presets import build_default
data = load_dataset(limit_train=6400)
rng = np.random.default_rng(0)
model = build_default((1, 28, 28), 10, rng)
opt = nc.Adam(model.parameters(), lr=3e-3)
start = time.perf_counter()
with DataParallel(model.train(), 2) as parallel:
    for idx in batches(6400, 64, rng):
        parallel.forward_backward(train_step, data.train.images[idx], data.train.labels[idx])
        opt.step()
        opt.zero_grad()
train = time.perf_counter() - start
predict_proba(model, data.test.images[:1000])
start = time.perf_counter()
predict_proba(model, data.test.images)
proba = 10000 / (time.perf_counter() - start)
model.eval()
model(data.test.images[:5000])
start = time.perf_counter()
model(data.test.images)
forward = 10000 / (time.perf_counter() - start)
print(nc.__file__, train, proba, forward)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="the src folder of the old tree")
    parser.add_argument("new", help="the src folder of the new tree")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results = {args.old: [], args.new: []}
    for r in range(args.rounds):
        for tree in (args.old, args.new) if r % 2 == 0 else (args.new, args.old):
            out = subprocess.run([sys.executable, "-c", WORKER, tree], capture_output=True, text=True, check=True)
            path, *numbers = out.stdout.split()
            results[tree].append([float(v) for v in numbers])
            print(
                f"round {r + 1} {path}: train {numbers[0][:5]} s, predict_proba {float(numbers[1]):,.0f} img/s, "
                f"model(x) {float(numbers[2]):,.0f} img/s",
                flush=True,
            )
    old, new = ([statistics.median(col) for col in zip(*results[tree])] for tree in (args.old, args.new))
    for name, o, n, lower_is_better in zip(("train s", "predict_proba img/s", "model(x) img/s"), old, new, (1, 0, 0)):
        print(f"{name:20} old {o:10.3f}  new {n:10.3f}  new/old {n / o:.3f}" + (" (time)" if lower_is_better else ""))


if __name__ == "__main__":
    main()
