"""Data parallelism over threads: the same gradients as one batch, and the same numbers on any thread count."""

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_info, threadpool_limits

import nanocnn as nc
from helpers import batch, rel_error, small_net
from nanocnn.parallel import PART, DataParallel, inference_parts, resolve_threads, sync, training_parts
from nanocnn.parallel.cpus import MAX_THREADS
from nanocnn.parallel.threads import run_on_threads
from nanocnn.train import fit, train_step
from nanocnn.train.config import Config
from nanocnn.train.evaluation import predict_proba


def grads(model):
    return [p.grad.copy() for p in model.parameters()]


@settings(max_examples=3 * settings().max_examples)  # cheap: three times the profile's count
@given(st.integers(1, 1000))
def test_parts_cover_the_batch_in_order_with_at_least_PART_images_each(n):
    parts = training_parts(n)
    assert len(parts) == max(1, n // PART)
    assert parts[0].start == 0 and parts[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(parts, parts[1:]))
    sizes = [s.stop - s.start for s in parts]
    assert max(sizes) - min(sizes) <= 1 and (n < PART or min(sizes) >= PART)


@settings(max_examples=3 * settings().max_examples)  # cheap: three times the profile's count
@given(st.integers(1, 1000), st.integers(1, 300))
def test_inference_parts_are_whole_parts_of_their_size_and_one_rest(n, size):
    parts = inference_parts(n, size)
    assert parts[0].start == 0 and parts[-1].stop == n and all(a.stop == b.start for a, b in zip(parts, parts[1:]))
    assert all(s.stop - s.start == size for s in parts[:-1]) and 1 <= parts[-1].stop - parts[-1].start <= size


@pytest.mark.parametrize("n", [64, 100, 130])
def test_parts_give_the_whole_batch_gradient(n, rng):
    model = small_net(rng)
    x, y = batch(rng, n)
    logits, loss = train_step(model, x, y)
    whole = grads(model)
    model.zero_grad()
    with DataParallel(model, 2) as parallel:
        results = parallel.forward_backward(train_step, x, y)
    assert len(results) == len(training_parts(n)) > 1
    assert rel_error(np.concatenate([r[0] for r in results]), logits) < 1e-14
    assert sum(r[1] * len(r[0]) for r in results) / n == pytest.approx(loss, rel=1e-12)
    for g, w in zip(grads(model), whole):
        assert rel_error(g, w) < 1e-12
    assert max(np.abs(w).max() for w in whole) > 0


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_gradients_are_bit_identical_on_any_number_of_threads(dropout):
    runs = []
    for threads in (1, 2, 3):
        rng = np.random.default_rng(7)
        model = small_net(rng, np.float32, dropout)
        x, y = batch(rng, 100, np.float32)
        with DataParallel(model, threads) as parallel:
            for _ in range(2):  # two steps: the dropout streams move on
                parallel.forward_backward(train_step, x, y)
        runs.append(grads(model))
    for other in runs[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(runs[0], other))


def test_dropout_replicas_draw_different_masks():
    layer = nc.Dropout(0.5, rng=np.random.default_rng(0))
    x = np.ones((64, 3), dtype=np.float32)
    a, b = layer.replicate(), layer.replicate()
    sync(a, layer, reseed=True)
    sync(b, layer, reseed=True)
    a, b = a(x), b(x)
    assert not np.array_equal(a, b)  # parts do not share one mask


def test_a_replica_shares_the_weights_but_not_the_gradients(rng):
    model = small_net(rng)
    copy = model.replicate()
    for p, q in zip(model.parameters(), copy.parameters()):
        assert q.data is p.data and q.grad is not p.grad
    x, y = batch(rng, 8)
    train_step(copy, x, y)
    assert all(not p.grad.any() for p in model.parameters())
    model[0].weight.data += 1  # an optimizer step is seen by the replica
    assert np.array_equal(copy[0].weight.data, model[0].weight.data)


@pytest.mark.slow
def test_training_and_prediction_give_the_same_numbers_on_one_or_two_threads(tmp_path):
    results = []
    for threads in (1, 2):
        config = Config(epochs=1, limit_train=512, limit_test=300, augment=True, threads=threads)
        model, _, acc = fit(config, out=tmp_path / f"t{threads}", progress=False, log=lambda *a: None)
        results.append((model.state_dict(), acc))
    (a, acc_a), (b, acc_b) = results
    assert all(np.array_equal(a[k], b[k]) for k in a) and acc_a == acc_b
    images = np.random.default_rng(0).random((300, 1, 28, 28), dtype=np.float32)
    one, two = (predict_proba(model, images, threads=t) for t in (1, 2))
    assert one.shape == (300, 10) and np.array_equal(one, two)


def test_blas_runs_one_thread_inside_and_gets_its_threads_back():
    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    with threadpool_limits(limits=2, user_api="blas"):  # two BLAS threads before, whatever the machine's default
        before = blas_threads()
        assert before and set(before) == {2}, before  # else the test below could not fail
        with DataParallel(nc.Sequential(nc.ReLU()), 2):
            assert set(blas_threads()) == {1}
        with DataParallel(nc.Sequential(nc.ReLU()), 1):  # one thread too: threaded BLAS rounds differently
            assert set(blas_threads()) == {1}
        assert blas_threads() == before


def test_an_error_in_a_worker_thread_reaches_the_caller_and_leaves_nothing_behind(rng):
    model = small_net(rng)
    x, y = batch(rng, 64)
    train_step(model, x, y)
    expected = grads(model)
    model.zero_grad()
    label, y[40] = y[40], 9  # out of range, in the second part
    with DataParallel(model, 2) as parallel:
        with pytest.raises(ValueError, match=r"labels must be in \[0, 5\), got 9"):
            parallel.forward_backward(train_step, x, y)
        assert all(not p.grad.any() for p in model.parameters())
        y[40] = label
        parallel.forward_backward(train_step, x, y)  # still works, the failed step forgotten
    assert all(rel_error(g, e) < 1e-12 for g, e in zip(grads(model), expected))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_thread_counts_are_checked(bad):
    with pytest.raises(nc.UserError, match="threads must be an integer >= 1"):
        resolve_threads(bad)
    assert resolve_threads(None) >= 1 and resolve_threads(3) == 3


def test_more_threads_than_the_default_pool_all_run_at_once():
    """--threads above MAX_THREADS is honoured: every job of a round runs at the same time (each waits for all
    the others at a barrier), and the results come back in job order, as serially."""
    T = MAX_THREADS + 4
    barrier = threading.Barrier(T, timeout=20)

    def job(i):
        barrier.wait()  # BrokenBarrierError unless all T jobs are running at once
        return i * i

    assert run_on_threads(job, [(i,) for i in range(T)], T) == [i * i for i in range(T)]
    assert run_on_threads(lambda i: i + 1, [(i,) for i in range(5)], 2) == [1, 2, 3, 4, 5]  # smaller runs still work
