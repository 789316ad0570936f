"""What the export tests share: random and named models covering every option, onnxruntime, files made by hand."""

import json
import os
import struct

import numpy as np
import onnxruntime as ort
import pytest

import nanocnn as nc
from nanocnn.train.presets import PRESETS
from nanocnn.validation import UserError

# ---------------------------------------------------------------------------------------------- helpers


def randomize_biases(model, rng):
    """nanocnn starts biases at zero (and batch norm's statistics at 0 and 1, its scale at 1), which would hide
    one exported wrongly: give them random values."""
    for name, p in model.named_state():
        if name.endswith(("bias", "running_mean")) or (name.endswith("weight") and p.data.ndim == 1):
            p.data[...] = rng.standard_normal(p.data.shape) * 0.5 + (1 if name.endswith("weight") else 0)
        elif name.endswith("running_var"):
            p.data[...] = rng.random(p.data.shape) + 0.5
    return model


def random_model(seed, dtype=np.float32):
    """A seeded random classifier -> (model in eval mode, input_shape (C, H, W)).

    One or two conv stages (non-square kernels, strides 1-2, padding 0-2, bias or not), each maybe followed
    by ReLU, a max-pool (stride <= kernel, padding <= kernel // 2) and Dropout; then Flatten, Linear,
    ReLU, Dropout, Linear.
    """
    r = np.random.default_rng(seed)
    shape = (int(r.integers(1, 4)), int(r.integers(6, 15)), int(r.integers(6, 15)))
    input_shape, layers = shape, []
    for _ in range(int(r.integers(1, 3))):
        C, H, W = shape
        PH, PW = (int(v) for v in r.integers(0, 3, size=2))
        KH, KW = int(r.integers(1, min(5, H + 2 * PH) + 1)), int(r.integers(1, min(5, W + 2 * PW) + 1))
        layers.append(
            nc.Conv2d(
                C,
                int(r.integers(2, 6)),
                (KH, KW),
                stride=tuple(int(v) for v in r.integers(1, 3, 2)),
                padding=(PH, PW),
                bias=bool(r.integers(2)),
                dtype=dtype,
                rng=r,
            )
        )
        shape = layers[-1].output_shape(shape)
        if r.random() < 0.7:
            layers.append(nc.ReLU())
        KH, KW = int(r.integers(1, min(3, shape[1]) + 1)), int(r.integers(1, min(3, shape[2]) + 1))
        if r.random() < 0.7:
            stride = (int(r.integers(1, KH + 1)), int(r.integers(1, KW + 1)))
            padding = (int(r.integers(0, KH // 2 + 1)), int(r.integers(0, KW // 2 + 1)))
            layers.append(nc.MaxPool2d((KH, KW), stride=stride, padding=padding))
            shape = layers[-1].output_shape(shape)
        if r.random() < 0.3:
            layers.append(nc.Dropout(0.5, rng=r))
    hidden = int(r.integers(3, 9))
    layers += [
        nc.Flatten(),
        nc.Linear(int(np.prod(shape)), hidden, bias=bool(r.integers(2)), dtype=dtype, rng=r),
        nc.ReLU(),
        nc.Dropout(0.25, rng=r),
        nc.Linear(hidden, int(r.integers(2, 6)), dtype=dtype, rng=r),
    ]
    return randomize_biases(nc.Sequential(*layers), r).eval(), input_shape


def named_model(name):
    """Hand-picked networks that cover each layer kind and option -> (model in eval mode, input_shape)."""
    r = np.random.default_rng(len(name))
    if name in ("default preset", "classic preset", "best preset"):
        return randomize_biases(PRESETS[name.split()[0]].build((1, 28, 28), 10, r), r).eval(), (1, 28, 28)
    if name == "conv only, no bias":  # the output stays (N, F, OH, OW): no class count
        layers = [nc.Conv2d(2, 3, (3, 5), stride=(2, 1), padding=(0, 2), bias=False, rng=r)]
    elif name == "pool with padding":
        layers = [
            nc.Conv2d(1, 4, 2, rng=r),
            nc.MaxPool2d((3, 2), stride=(1, 2), padding=(1, 1)),
            nc.ReLU(),
            nc.Flatten(),
            nc.Linear(4 * 8 * 5, 3, rng=r),
        ]
    elif name == "linear without bias":
        layers = [nc.Flatten(), nc.Dropout(0.9), nc.Linear(81, 4, bias=False, rng=r)]
    elif name == "dropout only":  # no ONNX node at all but the identity
        layers = [nc.Dropout(0.5)]
    elif name == "nested sequential":
        layers = [
            nc.Sequential(nc.Conv2d(1, 2, 3, padding=1, rng=r), nc.ReLU()),
            nc.MaxPool2d(3),
            nc.Sequential(nc.Flatten(), nc.Sequential(nc.Linear(18, 5, rng=r))),
        ]
    else:
        raise AssertionError(name)
    return randomize_biases(nc.Sequential(*layers), r).eval(), {"conv only, no bias": (2, 7, 9)}.get(name, (1, 9, 9))


NAMED = [
    "default preset",
    "classic preset",
    "best preset",
    "conv only, no bias",
    "pool with padding",
    "linear without bias",
    "dropout only",
    "nested sequential",
]
SEEDS = list(range(12))


def run_onnx(path, x):
    """onnxruntime's output for x : float32 (N, C, H, W), on one thread (2 shared cores, deterministic)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def close(a, b, tol):
    """max |a - b| within tol relative to the largest magnitude (at least 1): logits are O(1)-O(10)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    return np.abs(a - b).max() <= tol * max(1.0, np.abs(b).max())


def user_error(fn, *args, words=(), **kwargs):
    """Call fn expecting a one-line UserError containing every one of ``words``; returns the message."""
    with pytest.raises(UserError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message
    for word in words:
        assert str(word) in message, message
    return message


def safetensors_file(path, header, data=b""):
    """Write a hand-made safetensors file: header (a dict, or raw bytes) after its 8-byte length, then data."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


class Trap:
    """Unpickling this creates the file ``marker``: proof that nothing was unpickled when it does not exist."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


class Scale(nc.Module):
    """A user's own layer: no ONNX or torch.nn equivalent."""

    def forward(self, x):
        return 2 * x


# ------------------------------------------------------------------------------------------------- ONNX
