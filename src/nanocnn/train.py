"""The training loop: one short, flat pass per epoch, and ``fit``, which runs a whole configured run.

Nothing in here knows which layers the model has: it calls forward, backward and the optimizer.
"""

import math
import sys
import time

import numpy as np
from tqdm import tqdm

from .data import batches, load_dataset
from .inference import evaluate
from .losses import softmax_cross_entropy
from .optim import SGD, Adam
from .parallel import LOCAL, DataParallel, parts
from .presets import get_preset
from .runs import Run


def make_optimizer(config, params):
    if config.optimizer == "sgd":
        return SGD(params, config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return Adam(params, config.lr, weight_decay=config.weight_decay)


def learning_rate(config, step, total_steps):
    """The learning rate for optimizer step ``step`` (0-based) of ``total_steps``."""
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))
    return config.lr


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


def train_epoch(model, optimizer, split, config, rng, epoch, step, total_steps, parallel, progress=True):
    """One pass over the training split, starting at optimizer step ``step``. Returns (mean loss, accuracy).

    ``parallel`` (an open parallel.DataParallel of model) runs the parts of each batch in threads.
    """
    model.train()
    n = len(split.labels)
    seen = correct = 0
    loss_sum = 0.0
    start = time.perf_counter()
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
    for idx in batches(n, config.batch_size, rng if config.shuffle else None):
        x, y = split.images[idx], split.labels[idx]  # batch
        optimizer.lr = learning_rate(config, step, total_steps)
        results = parallel.forward_backward(train_step, x, y)  # forward, loss, backward; parts in threads
        optimizer.step()  # step
        optimizer.zero_grad()  # zero_grad
        step += 1
        seen += len(idx)  # log
        loss_sum += sum(loss * len(logits) for logits, loss in results)
        correct += int((np.concatenate([logits for logits, _ in results]).argmax(axis=1) == y).sum())
        if bar.update(len(idx)):
            rate = seen / (time.perf_counter() - start)
            bar.set_postfix_str(f"loss {loss_sum / seen:.4f} acc {correct / seen:.4f} {rate:,.0f} img/s", refresh=False)
    bar.close()
    return loss_sum / n, correct / n


def prepare(config, run=None):
    """Everything before training, checked before anything is written: the config resolved (or the resumed
    run's), the data, the generator, the model, the optimizer and, resuming, their saved state.

    Returns (config, data, rng, model, optimizer, epochs done, metrics so far).
    """
    config = run.config if run else config.resolved()
    data = load_dataset(config.data, config.limit_train, config.limit_test)
    rng = np.random.default_rng(config.seed)  # the run's one source of randomness
    model = get_preset(config.preset).build(data.input_shape, data.num_classes, rng)
    optimizer = make_optimizer(config, model.parameters())
    start_epoch, metrics = run.restore(model, optimizer, rng, data) if run else (0, [])
    return config, data, rng, model, optimizer, start_epoch, metrics


def fit(config, out=None, resume=False, overwrite=False, progress=True, log=print, world=LOCAL):
    """Train a model as ``config`` says, writing checkpoints and metrics into a run folder.

    Returns (model, run, final test accuracy). Every setting is checked before anything is written.
    ``world`` is the processes training together (``distributed.connect()`` in an MPI job): each
    computes its share of every batch and of the evaluation, and only rank 0 writes and logs.
    """
    run = world.from_root(Run.resume, out, config) if resume else None  # rank 0 reads the checkpoint
    config, data, rng, model, optimizer, start_epoch, metrics = world.together(prepare, config, run)
    world.agree(config, data, model, rng)  # every rank the same settings, data, weights and generator
    threads = world.threads(config.threads)  # the machine's, not the run's: never saved
    if not resume:  # only now, with everything checked, write
        run = world.from_root(Run.create, out, config, overwrite)
    log, progress = (log, progress) if world.is_root else (quiet, False)
    log(str(config))
    log(
        f"data: {data.source}: {len(data.train.labels):,} training and {len(data.test.labels):,} test images "
        f"of shape {data.input_shape}, {data.num_classes} classes"
    )
    log(
        f"model: {config.preset} preset, {sum(p.data.size for p in model.parameters()):,} parameters; "
        f"run folder {run.path}; {world.describe(threads)}"
    )
    steps_per_epoch = math.ceil(len(data.train.labels) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    test_acc = metrics[-1]["test_acc"] if metrics else None
    busy = max(1, min(threads, len(world.share(len(parts(config.batch_size))))))  # threads with a part to run
    with DataParallel(model, busy, world) as parallel:
        for epoch in range(start_epoch + 1, config.epochs + 1):
            t0 = time.perf_counter()
            train_loss, train_acc = train_epoch(
                model,
                optimizer,
                data.train,
                config,
                rng,
                epoch,
                (epoch - 1) * steps_per_epoch,
                total_steps,
                parallel,
                progress,
            )
            test_loss, test_acc, _ = evaluate(model, data.test, threads, world)
            seconds = time.perf_counter() - t0
            metrics.append(
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
                run.save(model, optimizer, rng, data, metrics)
            log(
                f"epoch {epoch}/{config.epochs}  train loss {train_loss:.4f}  train acc {train_acc:.4f}  "
                f"test loss {test_loss:.4f}  test acc {test_acc:.4f}  {seconds:.1f} s"
            )
    if test_acc is None:
        test_acc = evaluate(model, data.test, threads, world)[1]
    return model, run, test_acc


def quiet(*args, **kwargs):
    """The log of ranks other than 0: they print nothing."""
