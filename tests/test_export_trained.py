"""A trained `best` model (batch norm with moved running statistics, residual blocks, global average pooling)
gives the predictions nanocnn gives on all 10,000 test images in onnxruntime and, from safetensors, in PyTorch."""

import json

import numpy as np
import pytest

import nanocnn as nc
from exporting import close
from nanocnn.data import load_dataset
from nanocnn.train import fit
from nanocnn.train.config import Config
from nanocnn.train.evaluation import predict_proba


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(best-preset model trained on 1,024 augmented images for one epoch, its logits on the 10,000 test images)."""
    out = tmp_path_factory.mktemp("best") / "run"
    config = Config(preset="best", epochs=1, limit_train=1024, limit_test=100)
    model, _, _ = fit(config, out=out, progress=False, log=lambda *a: None)
    model.eval()
    running = [layer for layer in model.modules() if isinstance(layer, nc.BatchNorm2d)]
    assert running and all(not np.allclose(layer.running_var.data, 1) for layer in running)
    images = load_dataset(with_train=False, num_classes=10).test.images
    assert len(images) == 10_000
    return model, images, model(images)


def assert_same_predictions(theirs, ours):
    """The same class for every image, but where nanocnn's top two logits are too close to tell apart."""
    assert close(theirs, ours, 1e-4)
    top2 = np.sort(ours, axis=1)[:, -2:]
    differ = theirs.argmax(axis=1) != ours.argmax(axis=1)
    assert np.all(top2[differ, 1] - top2[differ, 0] < 1e-4 * max(1.0, np.abs(ours).max()))


def test_onnxruntime_predicts_all_test_images_as_nanocnn_does(trained, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from exporting import run_onnx

    model, images, logits = trained
    path = nc.export_onnx(model, tmp_path / "best.onnx", (1, 28, 28))
    assert_same_predictions(run_onnx(path, images), logits)
    assert np.array_equal(predict_proba(model, images).argmax(axis=1), logits.argmax(axis=1))


def test_pytorch_predicts_all_test_images_as_nanocnn_does_from_the_safetensors_file(trained, tmp_path):
    torch = pytest.importorskip("torch")
    import safetensors.torch
    from safetensors import safe_open

    from test_export_pytorch import torch_builder

    model, images, logits = trained
    path = nc.save_safetensors(model, tmp_path / "best.safetensors", (1, 28, 28))
    theirs = torch_builder(torch)("Sequential", json.loads(safe_open(path, "pt").metadata()["pytorch"]))
    theirs.load_state_dict(safetensors.torch.load_file(path))
    with torch.no_grad():
        assert_same_predictions(theirs.eval()(torch.from_numpy(images)).numpy(), logits)
