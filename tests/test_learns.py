"""A seeded "it learns" test through the real training loop: 95% on a few thousand bundled MNIST images."""

import pytest

import nanocnn as nc
from nanocnn.train import fit
from nanocnn.train.config import Config


@pytest.mark.slow
def test_default_preset_learns_mnist_through_fit(tmp_path):
    """fit: the loop `nanocnn train` runs, on 8,000 images for two epochs."""
    model, run, acc = fit(
        Config(epochs=2, limit_train=8000, limit_test=2000), out=tmp_path / "run", progress=False, log=lambda *a: None
    )
    assert acc > 0.95, acc
    assert nc.load(run.model_path)[1]["metrics"][-1]["test_acc"] == acc
