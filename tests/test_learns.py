"""A seeded "it learns" test: a small net passes 95% on a few thousand bundled MNIST images within seconds."""
import math

import numpy as np

import nanocnn as nc
from nanocnn.data import batches, load_dataset
from nanocnn.train import evaluate


def test_small_net_learns_mnist():
    data = load_dataset(limit_train=8000, limit_test=2000)
    rng = np.random.default_rng(0)
    model = nc.Sequential(nc.Conv2d(1, 8, 5, padding=2, rng=rng), nc.ReLU(), nc.MaxPool2d(2),
                          nc.Conv2d(8, 16, 5, padding=2, rng=rng), nc.ReLU(), nc.MaxPool2d(2),
                          nc.Flatten(), nc.Linear(16 * 7 * 7, 10, rng=rng))
    opt = nc.Adam(model.parameters(), lr=3e-3)
    before = evaluate(model, data.test)[1]
    epochs, batch = 2, 32
    total, step = epochs * math.ceil(len(data.train.labels) / batch), 0
    for epoch in range(epochs):
        for idx in batches(len(data.train.labels), batch, rng):
            opt.lr = 3e-3 * 0.5 * (1 + math.cos(math.pi * step / total))   # cosine decay
            _, dlogits = nc.softmax_cross_entropy(model(data.train.images[idx]), data.train.labels[idx])
            model.backward(dlogits, input_grad=False)
            opt.step()
            opt.zero_grad()
            step += 1
    loss, acc, _ = evaluate(model, data.test)
    assert before < 0.3 and acc > 0.95, (before, acc)
