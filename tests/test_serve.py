"""`nanocnn serve`'s JSON API through http.client: answers equal `nanocnn predict` and the layers' own numbers."""

import argparse
import http.client
import json
import re

import numpy as np
import pytest
from PIL import Image

import nanocnn as nc
from nanocnn.cli import main
from nanocnn.data import bundled_path, load_image
from nanocnn.nn.trace import Trace
from nanocnn.serve.handler import CSP
from nanocnn.train.evaluation import predict_proba
from serving import TIMEOUT, call, decoded, drawing


def test_predictions_equal_nanocnn_predict(server, model_dir, digits, tmp_path, capsys):
    paths = []
    for i, digit in enumerate(digits[:6]):  # drawn dark on light, 3x larger
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(255 - np.kron(digit, np.ones((3, 3), np.uint8))).save(paths[-1])
    assert main(["predict", str(model_dir), *map(str, paths)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    model, meta = nc.load(model_dir / "model.npz")
    for path, line in zip(paths, printed):
        answer = call(server.port, "POST", "/api/predict", drawing(np.asarray(Image.open(path).convert("L"))))
        assert answer.status == 200 and answer.headers["content-type"] == "application/json"
        result = answer.json()
        expected = [(int(k), float(p)) for k, p in re.findall(r"(\d+) \((\d\.\d{3})\)", line)]
        assert [t["class"] for t in result["top"]] == [k for k, _ in expected]
        assert result["prediction"] == expected[0][0]
        assert all(abs(t["probability"] - p) <= 0.0005 + 1e-9 for t, (_, p) in zip(result["top"], expected))
        proba = predict_proba(model, load_image(path, tuple(meta["input_shape"]))[None])[0]
        np.testing.assert_allclose(result["probabilities"], proba, rtol=1e-5, atol=1e-7)
    labels = np.load(bundled_path())["testlabels"][:6]
    assert sum(int(line.split(": ")[1][0]) == y for line, y in zip(printed, labels)) >= 5  # the model works


def test_the_views_are_the_layers_own_numbers_in_every_channel(server, model_dir, digits):
    """One trace per request: the input, every layer's output and the saliency equal, to the bit, those of
    nanocnn.nn.trace on the same prepared image (the numbers themselves, not pictures of them)."""
    result = call(server.port, "POST", "/api/predict", drawing(255 - digits[1])).json()
    model, meta = nc.load(model_dir / "model.npz")
    image = load_image_from_pixels(255 - digits[1], tuple(meta["input_shape"]))
    assert decoded(result["input"]["image"]).tobytes() == image.tobytes()
    assert result["blank"] is False and abs(sum(result["probabilities"]) - 1) < 1e-5
    trace = Trace(model, image)
    kinds = [type(layer).__name__ for layer in model.layers] + ["Softmax"]
    assert [layer["kind"] for layer in result["layers"]] == kinds
    assert decoded(result["layers"][-1]["output"]).tobytes() == trace.probabilities.tobytes()
    for view, layer, out in zip(result["layers"], model.layers, trace.outputs):
        assert view["description"] == repr(layer) and view["shape"] == list(out.shape)
        assert decoded(view["output"]).tobytes() == out.tobytes()  # all channels, real values
    assert result["saliency"]["class"] == result["prediction"] == trace.prediction
    gradient = trace.backward(trace.onehot(trace.prediction))
    assert decoded(result["saliency"]["gradient"]).tobytes() == gradient.tobytes()
    assert result["saliency"]["scale"] == float(np.abs(gradient).max()) > 0
    np.testing.assert_allclose(result["probabilities"], trace.probabilities, rtol=1e-6)


def test_a_request_gets_only_the_views_it_names(server, digits):
    """The page asks for what it shows; every answer carries the prediction, whatever the views."""
    full = call(server.port, "POST", "/api/predict", drawing(digits[3])).json()
    assert {"input", "saliency", "layers"} <= set(full)
    for views in ([], ["input"], ["layers", "saliency"]):
        answer = call(server.port, "POST", "/api/predict", {**drawing(digits[3]), "views": views}).json()
        assert set(answer) == {"prediction", "probabilities", "top", "blank", "ms", *views}
        assert answer["prediction"] == full["prediction"]
        for name in views:
            assert answer[name] == full[name]
    sample = call(server.port, "GET", "/api/sample?kind=test&index=5&views=input").json()
    assert "input" in sample and "layers" not in sample and sample["index"] == 5


def load_image_from_pixels(pixels, shape):
    from nanocnn.data import prepare_image as prepare

    return prepare(np.asarray(pixels, dtype=np.float32) / 255, shape)


def test_either_polarity_and_any_size_give_the_same_answer(server, digits):
    answers = []
    for image in (digits[2], 255 - digits[2], np.kron(255 - digits[2], np.ones((5, 4), np.uint8))):
        answers.append(call(server.port, "POST", "/api/predict", drawing(image)).json())
    assert answers[0]["prediction"] == answers[1]["prediction"] == answers[2]["prediction"] is not None
    np.testing.assert_allclose(decoded(answers[0]["input"]["image"]), decoded(answers[1]["input"]["image"]), atol=1e-3)
    floats = drawing(digits[2] * 0.99 + 0.25)  # floats are numbers too
    assert call(server.port, "POST", "/api/predict", floats).json()["prediction"] == answers[0]["prediction"]


@pytest.mark.parametrize("fill", [0, 255, 128, 37.5])
def test_a_blank_drawing_gets_no_prediction(server, fill):
    result = call(server.port, "POST", "/api/predict", {"width": 30, "height": 20, "pixels": [fill] * 600}).json()
    assert result["prediction"] is None and result["probabilities"] is None and result["blank"] is True
    assert result["top"] == [] and result["layers"] is None and result["saliency"] is None
    image = decoded(result["input"]["image"])
    assert image.shape == (1, 28, 28) and not image.any()


VIEW_MODULES = ("prediction", "input", "saliency", "layers", "explain", "backward", "teach", "playground")
PAGE_FILES = ["/", "/style.css", "/views.css"] + [
    f"/js/{name}.js" for name in ("main", "api", "pad", "paint", "dom", "cells")
]
PAGE_FILES += [f"/js/views/{name}.js" for name in VIEW_MODULES]


def test_pages_info_and_samples(server):
    for path in PAGE_FILES:
        kind = "text/html" if path == "/" else "text/css" if path.endswith(".css") else "text/javascript"
        answer = call(server.port, "GET", path)
        assert answer.status == 200 and answer.headers["content-type"].startswith(kind) and answer.body
        assert answer.headers["content-security-policy"] == CSP and answer.headers["cache-control"] == "no-cache"
        assert not any(h.startswith("access-control-") for h in answer.headers)
    page = call(server.port, "GET", "/").body.decode()
    assert '<canvas id="pad"' in page and 'id="clear"' in page and "<script>" not in page and " style=" not in page
    assert '<script type="module" src="/js/main.js">' in page
    head = call(server.port, "HEAD", "/")
    assert head.status == 200 and head.body == b"" and int(head.headers["content-length"]) == len(page.encode())
    assert call(server.port, "GET", "/favicon.ico").status == 204
    info = call(server.port, "GET", "/api/info").json()
    assert info["input_shape"] == [1, 28, 28] and info["num_classes"] == 10 and info["parameters"] > 0
    assert info["samples"]["count"] == 2000 and info["samples"]["source"] == "the bundled MNIST"
    assert 0 < info["samples"]["mistakes"] < 200 and info["samples"]["accuracy"] > 0.9
    labels = np.load(bundled_path())["testlabels"]
    sample = call(server.port, "GET", "/api/sample?kind=test&index=3").json()
    assert sample["index"] == 3 and sample["label"] == labels[3] and sample["kind"] == "test"
    assert sample["prediction"] is not None and len(sample["layers"]) == len(info["layers"]) + 1  # and the softmax
    random = call(server.port, "GET", "/api/sample?kind=random").json()
    assert 0 <= random["index"] < 2000 and random["label"] == labels[random["index"]]
    first, second = (call(server.port, "GET", f"/api/sample?kind=mistake&rank={r}").json() for r in (0, 1))
    for mistake in (first, second):
        assert mistake["prediction"] != mistake["label"] and mistake["mistakes"] == info["samples"]["mistakes"]
    assert first["probabilities"][first["prediction"]] >= second["probabilities"][second["prediction"]]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:  # keep-alive: one connection, several requests
        for _ in range(3):
            conn.request("GET", "/api/info")
            assert json.loads(conn.getresponse().read()) == info
    finally:
        conn.close()


def test_data_option_and_models_of_other_sizes(model_dir, tmp_path, capsys, digits):
    from nanocnn.cli.serve import make_api

    data = np.load(bundled_path())
    np.savez(
        tmp_path / "few.npz",
        trainimages=data["testimages"][:10],
        trainlabels=data["testlabels"][:10],
        testimages=data["testimages"][:50],
        testlabels=data["testlabels"][:50],
    )
    model, meta = nc.load(model_dir / "model.npz")
    args = argparse.Namespace(data=str(tmp_path / "few.npz"), limit_test=None, threads=1, model=str(model_dir))
    api = make_api(args, model, meta)
    assert api.info()["samples"]["count"] == 50 and api.info()["samples"]["source"] == "few.npz"
    assert api.info()["model"] == f"{model_dir.name}/model.npz"
    # A 1x32x32 model: no bundled test images fit it, drawings are prepared to 32x32.
    rng = np.random.default_rng(0)
    big = nc.Sequential(nc.Conv2d(1, 2, 3, rng=rng), nc.ReLU(), nc.Flatten(), nc.Linear(2 * 30 * 30, 10, rng=rng))
    args = argparse.Namespace(data=None, limit_test=None, threads=1, model="big.npz")
    api = make_api(args, big, {"input_shape": [1, 32, 32], "num_classes": 10})
    assert api.samples is None and "no test images" in capsys.readouterr().err
    result = api.predict(drawing(255 - digits[0]))
    assert decoded(result["input"]["image"]).shape == (1, 32, 32) and result["layers"][0]["shape"] == [2, 30, 30]
