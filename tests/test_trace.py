"""nn/trace.py: one example through a network with every number kept, backward and one private SGD step; the
model it traces is never changed, also with many traces at once."""

import threading

import numpy as np

import nanocnn as nc
from helpers import numerical_grad, rel_error, small_net
from nanocnn.backend.blas import single_thread
from nanocnn.nn.trace import Trace


def test_a_trace_without_gradients_has_the_numbers_of_model_x(rng):
    model = small_net(rng, np.float32, dropout=0.5).eval()
    image = rng.standard_normal((1, 10, 10)).astype(np.float32)
    trace = Trace(model, image, gradients=False)
    x = image[None]
    with single_thread():
        for layer, given, out in zip(model.layers, trace.inputs, trace.outputs):
            assert given.tobytes() == x[0].tobytes()
            x = layer(x)
            assert out.tobytes() == x[0].tobytes()
        assert trace.logits.tobytes() == model(image[None])[0].tobytes()  # the fused plan: the same bits
    assert trace.prediction == int(trace.logits.argmax()) and abs(trace.probabilities.sum() - 1) < 1e-6


def test_backward_keeps_every_layers_output_gradient_and_matches_finite_differences(rng):
    model = small_net(rng, np.float64)
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.data.shape) * 0.5
    image = rng.standard_normal((1, 10, 10))
    trace = Trace(model, image)
    k = trace.prediction
    gradient = trace.backward(trace.onehot(k))
    logit = lambda: float(model.eval()(image[None])[0, k])  # noqa: E731
    x = image.copy()
    numeric = numerical_grad(lambda: float(model.eval().enable_grad()(x[None])[0, k]), x)
    assert gradient.shape == image.shape and rel_error(gradient, numeric) < 1e-7
    assert [g.shape for g in trace.output_grads] == [o.shape for o in trace.outputs]
    assert np.array_equal(trace.output_grads[-1], trace.onehot(k))
    assert np.array_equal(trace.output_grads[-2], model[-1].weight.data[k])  # through Linear: row k of W
    assert abs(logit() - float(trace.logits[k])) < 1e-12  # the same logit without gradients, up to rounding


def test_one_sgd_step_on_a_private_copy_lowers_the_loss_and_leaves_the_model_alone(rng):
    model = small_net(rng, np.float32).eval()
    before = model.state_dict()
    image = rng.standard_normal((1, 10, 10)).astype(np.float32)
    trace = Trace(model, image)
    label = (trace.prediction + 1) % 5  # a label the model does not predict
    loss = trace.loss_backward(label)
    twin = trace.sgd_step(0.05)
    after = Trace(twin, image, gradients=False)
    assert after.probabilities[label] > trace.probabilities[label]
    assert nc.softmax_cross_entropy(after.logits[None], np.array([label]))[0] < loss
    for (name, p), q in zip(twin.named_parameters(), trace.model.parameters()):
        assert np.allclose(p.data, before[name] - 0.05 * q.grad)
    assert all(np.array_equal(model.state_dict()[k], before[k]) for k in before)  # untouched
    assert all(not p.grad.any() for p in model.parameters()) and not model.training


def test_eight_threads_tracing_and_teaching_one_model_get_the_serial_answers(rng):
    model = small_net(rng, np.float32).eval()
    before = model.state_dict()
    images = rng.standard_normal((24, 1, 10, 10)).astype(np.float32)

    def answer(i):
        trace = Trace(model, images[i])
        trace.loss_backward(i % 5)
        twin = trace.sgd_step(0.1)
        return trace.input_grad.tobytes(), Trace(twin, images[i], gradients=False).logits.tobytes()

    with single_thread():
        serial = [answer(i) for i in range(len(images))]
        results = [None] * len(images)
        barrier = threading.Barrier(8)

        def work(t):
            barrier.wait()
            for i in range(t, len(images), 8):
                results[i] = answer(i)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert results == serial
    assert all(np.array_equal(model.state_dict()[k], before[k]) for k in before)
