"""Impossible configurations raise UserError (a ValueError) naming the layer, the rule and the value."""

import numpy as np
import pytest

import nanocnn as nc


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: nc.Conv2d(0, 4, 3), "Conv2d: in_channels must be an integer >= 1, got 0"),
        (lambda: nc.Conv2d(1, -2, 3), "Conv2d: out_channels must be an integer >= 1, got -2"),
        (lambda: nc.Conv2d(1, 4, 0), "Conv2d: kernel_size must be an integer >= 1 or a pair of them, got 0"),
        (lambda: nc.Conv2d(1, 4, (3, 0)), "Conv2d: kernel_size must be an integer >= 1 or a pair of them, got (3, 0)"),
        (lambda: nc.Conv2d(1, 4, 3, stride=0), "Conv2d: stride must be an integer >= 1 or a pair of them, got 0"),
        (lambda: nc.Conv2d(1, 4, 3, stride=1.5), "Conv2d: stride must be an integer >= 1 or a pair of them, got 1.5"),
        (lambda: nc.Conv2d(1, 4, 3, padding=-1), "Conv2d: padding must be an integer >= 0 or a pair of them, got -1"),
        (lambda: nc.Conv2d(1, 4, 3, dtype=np.int32), "Conv2d: dtype must be float32 or float64"),
        (lambda: nc.MaxPool2d(0), "MaxPool2d: kernel_size must be an integer >= 1 or a pair of them, got 0"),
        (lambda: nc.MaxPool2d(2, stride=-1), "MaxPool2d: stride must be an integer >= 1 or a pair of them, got -1"),
        (lambda: nc.MaxPool2d(2, padding=2), "MaxPool2d: padding must be at most half the kernel size (2, 2), got 2"),
        (lambda: nc.Linear(0, 3), "Linear: in_features must be an integer >= 1, got 0"),
        (lambda: nc.Linear(3, True), "Linear: out_features must be an integer >= 1, got True"),
        (lambda: nc.Dropout(1.0), "Dropout: p must be a finite number >= 0 and < 1, got 1.0"),
        (lambda: nc.Dropout(-0.1), "Dropout: p must be a finite number >= 0 and < 1, got -0.1"),
        (lambda: nc.Sequential(nc.ReLU(), "relu"), "Sequential: layer 1 must be a nanocnn layer, got str"),
    ],
)
def test_bad_constructor_arguments(make, message):
    with pytest.raises(nc.UserError) as e:
        make()
    assert str(e.value).startswith(message)


x32 = np.zeros((2, 1, 8, 8), dtype=np.float32)


@pytest.mark.parametrize(
    "layer, x, message",
    [
        (
            nc.Conv2d(1, 2, 3),
            np.zeros((2, 3, 8, 8), np.float32),
            "Conv2d: input must have 1 channels (axis 1), got shape (2, 3, 8, 8)",
        ),
        (
            nc.Conv2d(1, 2, 3),
            np.zeros((8, 8), np.float32),
            "Conv2d: input must have rank 4 (N, C, H, W), got shape (8, 8)",
        ),
        (
            nc.Conv2d(1, 2, 3),
            x32.astype(np.float64),
            "Conv2d: input dtype must be float32 like the layer's weights, got float64",
        ),
        (nc.Conv2d(1, 2, 3), x32.astype(np.uint8), "Conv2d: input must be a floating array, got dtype uint8"),
        (nc.Conv2d(1, 2, 9), x32, "Conv2d: kernel 9x9 is larger than the padded input 8x8 (input 8x8, padding 0x0)"),
        (nc.Conv2d(1, 2, (3, 12), padding=1), x32, "Conv2d: kernel 3x12 is larger than the padded input 10x10"),
        (
            nc.MaxPool2d(3),
            np.zeros((1, 1, 2, 2), np.float32),
            "MaxPool2d: kernel 3x3 is larger than the padded input 2x2",
        ),
        (
            nc.MaxPool2d(2),
            np.zeros((4, 4), np.float32),
            "MaxPool2d: input must have rank 4 (N, C, H, W), got shape (4, 4)",
        ),
        (nc.Linear(5, 2), np.zeros((3, 4), np.float32), "Linear: input must have shape (N, 5), got (3, 4)"),
        (nc.Linear(5, 2), np.zeros((3, 5), np.float64), "Linear: input dtype must be float32 like the layer's weights"),
        (nc.ReLU(), np.zeros(3, np.int64), "ReLU: input must be a floating array, got dtype int64"),
    ],
)
def test_bad_inputs(layer, x, message):
    with pytest.raises(nc.UserError) as e:
        layer(x)
    assert str(e.value).startswith(message)


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.array([0, 10]), "softmax_cross_entropy: labels must be in [0, 10), got 10"),
        (np.array([-1, 0]), "softmax_cross_entropy: labels must be in [0, 10), got -1"),
        (np.array([0.5, 1.0]), "softmax_cross_entropy: labels must be integers, got dtype float64"),
        (np.array([1, 2, 3]), "softmax_cross_entropy: labels must have shape (2,), got (3,)"),
    ],
)
def test_bad_labels(labels, message):
    with pytest.raises(ValueError) as e:
        nc.softmax_cross_entropy(np.zeros((2, 10), np.float32), labels)
    assert str(e.value) == message


def test_model_output_shape_reports_a_misfit_before_running():
    model = nc.Sequential(nc.Conv2d(1, 2, 5), nc.MaxPool2d(2), nc.Flatten(), nc.Linear(2 * 12 * 12, 10))
    assert model.output_shape((1, 28, 28)) == (10,)
    with pytest.raises(ValueError, match=r"Linear: input must have 288 features, got shape \(50,\)"):
        model.output_shape((1, 14, 14))


def test_user_errors_are_value_errors_and_one_class():
    from nanocnn import validation

    assert issubclass(nc.UserError, ValueError)
    for check, args in (
        (validation.check_int, (1.5, "n", 1)),
        (validation.check_real, ("x", "lr", 0)),
        (validation.check_choice, ("z", "optimizer", ("sgd",))),
        (validation.check_pair, (0, "k")),
    ):
        with pytest.raises(nc.UserError):
            check(*args)
    assert validation.check_int(np.int64(3), "n", 1) == 3 and validation.check_pair([2, 3], "k") == (2, 3)
    assert validation.check_real(1, "lr", 0, low_open=True) == 1.0
