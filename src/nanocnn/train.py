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
from .parallel import DataParallel, parts, resolve_threads
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
    bar = tqdm(total=n, desc=f"epoch {epoch}/{config.epochs}", unit="img", leave=False, disable=not progress,
               mininterval=0.5 if sys.stderr.isatty() else 15, file=sys.stderr, dynamic_ncols=True)
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


def fit(config, out=None, resume=False, overwrite=False, progress=True, log=print):
    """Train a model as ``config`` says, writing checkpoints and metrics into a run folder.

    Returns (model, run, final test accuracy). Every setting is checked before anything is written.
    """
    run = Run.resume(out, config) if resume else None
    config = run.config if resume else config.resolved()
    threads = resolve_threads(config.threads)  # the machine's, not the run's: never saved
    data = load_dataset(config.data, config.limit_train, config.limit_test)
    rng = np.random.default_rng(config.seed)  # the run's one source of randomness
    model = get_preset(config.preset).build(data.input_shape, data.num_classes, rng)
    optimizer = make_optimizer(config, model.parameters())
    start_epoch, metrics = 0, []
    if resume:
        start_epoch, metrics = run.restore(model, optimizer, rng, data)
    else:  # only now, with everything checked, write
        run = Run.create(out, config, overwrite)
    log(str(config))
    log(f"data: {data.source}: {len(data.train.labels):,} training and {len(data.test.labels):,} test images "
        f"of shape {data.input_shape}, {data.num_classes} classes")
    log(f"model: {config.preset} preset, {sum(p.data.size for p in model.parameters()):,} parameters; "
        f"run folder {run.path}; {threads} thread{'s' * (threads > 1)}")
    steps_per_epoch = math.ceil(len(data.train.labels) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    test_acc = metrics[-1]["test_acc"] if metrics else None
    with DataParallel(model, min(threads, len(parts(config.batch_size)))) as parallel:
        for epoch in range(start_epoch + 1, config.epochs + 1):
            t0 = time.perf_counter()
            train_loss, train_acc = train_epoch(model, optimizer, data.train, config, rng, epoch,
                                                (epoch - 1) * steps_per_epoch, total_steps, parallel, progress)
            test_loss, test_acc, _ = evaluate(model, data.test, threads)
            seconds = time.perf_counter() - t0
            metrics.append(dict(epoch=epoch, train_loss=train_loss, train_acc=train_acc, test_loss=test_loss,
                                test_acc=test_acc, seconds=round(seconds, 3)))
            run.save(model, optimizer, rng, data, metrics)
            log(f"epoch {epoch}/{config.epochs}  train loss {train_loss:.4f}  train acc {train_acc:.4f}  "
                f"test loss {test_loss:.4f}  test acc {test_acc:.4f}  {seconds:.1f} s")
    if test_acc is None:
        test_acc = evaluate(model, data.test, threads)[1]
    return model, run, test_acc
