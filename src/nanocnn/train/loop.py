"""The training loop: one short, flat pass per epoch, and ``fit``, which runs a whole configured run.

Nothing in here knows which layers the model has: it calls forward, backward and the optimizer.
"""

from __future__ import annotations

import inspect
import math
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from ..data import Dataset, augment, batches, load_dataset
from ..nn import OPTIMIZERS, SCHEDULES, Sequential, softmax_cross_entropy
from ..nn.optim import Optimizer
from ..parallel import LOCAL, DataParallel, training_parts
from .config import Config
from .evaluation import evaluate
from .presets import get_preset, resolve
from .runs import Run


@dataclass
class Training:
    """What a run trains with: its settings, data, one random generator, model and optimizer, and how far it got."""

    config: Config
    data: Dataset
    rng: np.random.Generator  # the run's one source of randomness
    model: Sequential
    optimizer: Optimizer
    epochs_done: int = 0
    metrics: list = field(default_factory=list)  # one dict per epoch done

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.data.train.labels) / self.config.batch_size)


def make_optimizer(config, params):
    """The optimizer --optimizer names, given the settings of the config that its constructor takes."""
    cls = OPTIMIZERS[config.optimizer]
    takes = inspect.signature(cls).parameters
    return cls(params, config.lr, **{k: getattr(config, k) for k in ("momentum", "weight_decay") if k in takes})


def setup(config, run=None) -> Training:
    """Everything before training, checked before anything is written: the config resolved (or the resumed
    run's), the data, the generator, the model, the optimizer and, resuming, their saved state."""
    config = run.config if run else resolve(config)
    data = load_dataset(config.data, config.limit_train, config.limit_test)
    rng = np.random.default_rng(config.seed)
    model = get_preset(config.preset).build(data.input_shape, data.num_classes, rng)
    training = Training(config, data, rng, model, make_optimizer(config, model.parameters()))
    if run:
        training.epochs_done, training.metrics = run.restore(model, training.optimizer, rng, data)
    return training


def train_step(model, x, y, weight=1.0):
    """Forward, loss and backward for images x (N, C, H, W) and labels y (N,); returns (logits, mean loss).

    The gradients added into the parameters are ``weight`` times those of the mean loss over x: a
    batch cut into parts passes each part's share, len(part) / len(batch).
    """
    logits = model(x)  # forward
    loss, dlogits = softmax_cross_entropy(logits, y)  # loss
    if weight != 1:
        dlogits *= weight
    model.backward(dlogits, input_grad=False)  # backward (nobody needs d/dimages)
    return logits, loss


def train_epoch(training: Training, parallel: DataParallel, epoch: int, progress=True, watch=None):
    """One pass over the training split (epoch counts from 1). Returns (mean loss, accuracy).

    ``parallel`` (an open DataParallel of the model) runs the parts of each batch in threads; ``watch`` (a
    serve.live.Live, or None) looks at the model after each optimizer step.
    """
    config, model, optimizer, split = training.config, training.model, training.optimizer, training.data.train
    schedule, total_steps = SCHEDULES[config.schedule], training.steps_per_epoch * config.epochs
    step = (epoch - 1) * training.steps_per_epoch
    model.train()
    n, seen, correct, loss_sum, start = len(split.labels), 0, 0, 0.0, time.perf_counter()
    bar = tqdm(
        total=n,
        desc=f"epoch {epoch}/{config.epochs}",
        unit="img",
        leave=False,
        disable=not progress,
        mininterval=0.5 if sys.stderr.isatty() else 15,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    for idx in batches(n, config.batch_size, training.rng if config.shuffle else None):
        x, y = split.images[idx], split.labels[idx]  # batch
        x = augment(x, training.rng) if config.augment else x
        optimizer.lr = schedule(config.lr, step, total_steps)
        results = parallel.forward_backward(train_step, x, y)  # forward, loss, backward; parts in threads
        optimizer.step()  # step
        optimizer.zero_grad()  # zero_grad
        step += 1
        seen += len(idx)  # log
        batch_loss = sum(loss * len(logits) for logits, loss in results)
        loss_sum += batch_loss
        if watch is not None:
            watch.step(model, step, batch_loss / len(idx), optimizer.lr, len(idx))
        correct += int((np.concatenate([logits for logits, _ in results]).argmax(axis=1) == y).sum())
        if bar.update(len(idx)):
            rate = seen / (time.perf_counter() - start)
            bar.set_postfix_str(f"loss {loss_sum / seen:.4f} acc {correct / seen:.4f} {rate:,.0f} img/s", refresh=False)
    bar.close()
    return loss_sum / n, correct / n


def start(config, out, resume, overwrite, world):
    """(run folder, Training), on every rank: the run being resumed (read by rank 0), the settings, data, model
    and optimizer (set up on every rank, which must all agree), and only then a new run folder (rank 0).
    An error anywhere stops every rank before anything is written."""
    run = world.on_root(Run.resume, out, config) if resume else None
    training = world.on_every_rank(setup, config, run)
    world.check_same_start(training.config, training.data, training.model, training.rng)
    if not resume:
        run = world.on_root(Run.create, out, training.config, overwrite)
    return run, training


def fit(config, out=None, resume=False, overwrite=False, progress=True, log=print, world=LOCAL, watch=None):
    """Train a model as ``config`` says, writing checkpoints and metrics into a run folder.

    Returns (model, run, final test accuracy). Every setting is checked before anything is written.
    ``world`` is the processes training together (``parallel.mpi.connect()`` in an MPI job): each computes
    its share of every batch and of the evaluation, and only rank 0 writes, logs and shows progress.
    ``watch`` (`nanocnn train --live`: a serve.live.Live, rank 0's only) is shown the model between steps.
    """
    run, training = start(config, out, resume, overwrite, world)
    config, data, model = training.config, training.data, training.model
    threads = world.threads(config.threads)  # the machine's, not the run's: never saved
    log, progress, watch = (log, progress, watch) if world.is_root else (quiet, False, None)
    log(str(config))
    log(
        f"data: {data.source}: {len(data.train.labels):,} training and {len(data.test.labels):,} test images "
        f"of shape {data.input_shape}, {data.num_classes} classes"
    )
    log(
        f"model: {config.preset} preset, {sum(p.data.size for p in model.parameters()):,} parameters; "
        f"run folder {run.path}; {world.describe(threads)}"
    )
    test_acc = training.metrics[-1]["test_acc"] if training.metrics else None
    parts = training_parts(config.batch_size, config.part_size)
    busy = max(1, min(threads, len(world.share(len(parts)))))  # threads with a part to run
    with DataParallel(model, busy, world, config.part_size) as parallel, watching(watch, model):
        if watch is not None:
            steps = training.steps_per_epoch
            watch.begin(training, run, training.epochs_done * steps, config.epochs * steps, threads)
        for epoch in range(training.epochs_done + 1, config.epochs + 1):
            t0 = time.perf_counter()
            train_loss, train_acc = train_epoch(training, parallel, epoch, progress, watch)
            test_loss, test_acc, _ = evaluate(model, data.test, threads, world)
            seconds = time.perf_counter() - t0
            training.metrics.append(
                dict(
                    epoch=epoch,
                    train_loss=train_loss,
                    train_acc=train_acc,
                    test_loss=test_loss,
                    test_acc=test_acc,
                    seconds=round(seconds, 3),
                )
            )
            if world.is_root:
                run.save(model, training.optimizer, training.rng, data, training.metrics)
            log(
                f"epoch {epoch}/{config.epochs}  train loss {train_loss:.4f}  train acc {train_acc:.4f}  "
                f"test loss {test_loss:.4f}  test acc {test_acc:.4f}  {seconds:.1f} s"
            )
            if watch is not None:
                watch.epoch(model, training.metrics[-1])
    if test_acc is None:
        test_acc = evaluate(model, data.test, threads, world)[1]
    return model, run, test_acc


@contextmanager
def watching(watch, model):
    """Tell ``watch`` how the run ended: "done", or "stopped" by Ctrl-C or an error (then re-raised)."""
    if watch is None:
        yield
        return
    try:
        yield
    except BaseException:
        watch.end(model, "stopped")
        raise
    watch.end(model, "done")


def quiet(*args, **kwargs):
    """The log of ranks other than 0: they print nothing."""
