"""The page's explanations as the API gives them: every answer's terms add up to the number it explains, which is
the number the other views show; backward, teaching and the output-size playground; bounded for large models."""

import json
import threading

import numpy as np
import pytest

import nanocnn as nc
from nanocnn.nn.losses import softmax_cross_entropy
from nanocnn.serve import Api
from nanocnn.train.presets import PRESETS
from serving import decoded


def api_for(model, shape=(1, 28, 28), classes=10):
    return Api(model, {"input_shape": list(shape), "num_classes": classes}, "test", threads=8)


def digit(rng, side=28):
    """A drawing with ink: a bright bar and a blob, either polarity does not matter."""
    pixels = np.zeros((side, side), np.uint8)
    pixels[side // 5 : side - side // 5, side // 2 - 1 : side // 2 + 2] = 255
    pixels[side // 4 : side // 2, side // 4 : side // 2] = rng.integers(
        0, 255, (side // 2 - side // 4, side // 2 - side // 4)
    )
    return {"width": side, "height": side, "pixels": pixels.ravel().tolist()}


def terms_total(answer):
    """The total of an explanation, added up again from the terms the answer shows (not its "total" field)."""
    t, kind = answer["terms"], answer["kind"]
    if kind == "Conv2d":
        return sum(c["sum"] for c in t["channels"]) + (t["rest"]["sum"] if t["rest"] else 0) + t["bias"]
    if kind == "Linear":
        return sum(term["product"] for term in t["terms"]) + (t["rest"]["sum"] if t["rest"] else 0) + t["bias"]
    if kind == "MaxPool2d":
        window = decoded(t["window"])
        return float(window[tuple(t["winner"])])
    if kind == "ReLU":
        return max(t["input"], 0.0)
    if kind == "Softmax":
        return t["exps"][answer["position"][0]] / t["sum"]
    if kind == "BatchNorm2d":
        return (t["input"] - t["mean"]) / np.sqrt(t["var"] + t["eps"]) * t["gamma"] + t["beta"]
    if kind in ("Flatten", "Dropout"):
        return answer["total"]
    raise AssertionError(kind)


def adds_up(total, value, scale):
    return abs(total - value) <= 1e-5 * (abs(scale) + abs(value)) + 1e-7


def eight_by_eight(rng):
    """A model for 8x8 digits: padding, a pool, a conv on 4x4 maps, a short linear layer."""
    layers = [nc.Conv2d(1, 6, 3, padding=1, rng=rng), nc.ReLU(), nc.MaxPool2d(2), nc.Conv2d(6, 8, 3, rng=rng)]
    return nc.Sequential(*layers, nc.ReLU(), nc.Flatten(), nc.Linear(8 * 2 * 2, 10, rng=rng))


@pytest.mark.parametrize("preset", ["default", "seed", "8x8"])
def test_every_layers_explanation_adds_up_to_the_number_the_strip_shows(preset, rng):
    side = 8 if preset == "8x8" else 28
    model = eight_by_eight(rng) if preset == "8x8" else PRESETS[preset].build((1, 28, 28), 10, rng)
    api = api_for(model, (1, side, side))
    drawing = digit(rng, side)
    layers = api.predict({**drawing, "views": ["layers"]})["layers"]
    for index, layer in enumerate(layers):
        out = decoded(layer["output"])
        for _ in range(6):
            position = [int(rng.integers(s)) for s in layer["shape"]]
            answer = api.explain({**drawing, "layer": index, "position": position})
            assert answer["explained"] and answer["kind"] == layer["kind"] and answer["position"] == position
            assert answer["value"] == float(out[tuple(position)])  # the very number the strip shows
            assert adds_up(answer["total"], answer["value"], np.abs(out).max())
            assert adds_up(terms_total(answer), answer["value"], np.abs(out).max()), (index, answer["kind"])
            json.dumps(answer, allow_nan=False)
    first = api.explain({**drawing, "layer": 0, "position": [2, 5, 6]})["terms"]
    kernel = model[0].kernel_size
    assert (
        first["kernel"] == list(kernel)
        and len(first["channels"]) == 1
        and first["receptive_field"]
        == {
            "top": max(5 * model[0].stride[0] - model[0].padding[0], 0),
            "bottom": 5 * model[0].stride[0] - model[0].padding[0] + kernel[0] - 1,
            "left": max(6 * model[0].stride[1] - model[0].padding[1], 0),
            "right": 6 * model[0].stride[1] - model[0].padding[1] + kernel[1] - 1,
        }
    )


@pytest.mark.parametrize("preset", ["default", "seed"])
def test_every_gradient_explanation_adds_up_to_the_backward_views_number(preset, rng):
    model = PRESETS[preset].build((1, 28, 28), 10, rng)
    api = api_for(model)
    drawing = digit(rng)
    back = api.backward({**drawing, "label": 4})
    grads = {-1: decoded(back["input_gradient"])} | {g["index"]: decoded(g["gradient"]) for g in back["gradients"]}
    for index, g in grads.items():
        for _ in range(6):
            position = [int(rng.integers(s)) for s in g.shape]
            answer = api.explain({**drawing, "layer": index, "position": position, "what": "gradient", "label": 4})
            assert answer["explained"] and answer["label"] == 4 and answer["value"] == float(g[tuple(position)])
            assert adds_up(answer["total"], answer["value"], np.abs(g).max()), (index, answer["kind"])
            t = answer["terms"]
            if t and "terms" in t:
                shown = sum(term["product"] for term in t["terms"]) + (t["rest"]["sum"] if t["rest"] else 0)
                assert adds_up(shown, answer["value"], np.abs(g).max())


def test_backward_gives_the_loss_and_every_gradient_of_the_layers_own_backward(rng):
    model = PRESETS["default"].build((1, 28, 28), 10, rng)
    api = api_for(model)
    drawing = digit(rng)
    answer = api.backward({**drawing, "label": 3})
    logits = np.log(np.asarray(answer["probabilities"]))  # softmax is shift-invariant: log p are logits
    assert answer["label"] == 3 and abs(answer["loss"] - softmax_cross_entropy(logits[None], np.array([3]))[0]) < 1e-4
    assert [g["index"] for g in answer["gradients"]] == list(range(len(model)))
    assert all(np.abs(decoded(g["gradient"])).max() > 0 for g in answer["gradients"][-3:])
    assert [p["name"] for p in answer["parameters"]] == [name for name, _ in model.named_parameters()]
    assert all(p["norm"] > 0 for p in answer["parameters"])
    default = api.backward(drawing)  # no label: the prediction's
    assert default["label"] == default["prediction"] == int(np.argmax(default["probabilities"]))


def test_teaching_a_wrong_label_raises_it_on_a_copy_and_the_served_model_never_changes(rng):
    model = PRESETS["default"].build((1, 28, 28), 10, rng)
    api = api_for(model)
    drawing = digit(rng)
    before = api.predict(drawing)
    wrong = (before["prediction"] + 1) % 10
    state = {k: v.copy() for k, v in model.state_dict().items()}
    taught = api.teach({**drawing, "label": wrong, "lr": 0.05})
    assert taught["after"][wrong] > taught["before"][wrong] and taught["loss_after"] < taught["loss_before"]
    assert taught["before"] == pytest.approx(before["probabilities"], abs=1e-6)
    assert [m["name"] for m in taught["moved"]] == [n for n, _ in model.named_parameters()]
    assert all(m["change"] > 0 for m in taught["moved"])
    f = taught["filters"]
    assert np.allclose(decoded(f["after"]) - decoded(f["before"]), decoded(f["difference"]), atol=1e-6)
    assert all(np.array_equal(model.state_dict()[k], state[k]) for k in state)
    again = api.predict(drawing)
    assert again["probabilities"] == before["probabilities"]  # the next request meets the same model
    assert api.teach({**drawing, "label": wrong})["lr"] == api.info()["teach_lr"]


def test_eight_clients_explaining_and_teaching_at_once_get_their_serial_answers(rng):
    model = PRESETS["default"].build((1, 28, 28), 10, rng)
    api = api_for(model)
    drawings = [digit(np.random.default_rng(s)) for s in range(4)]
    jobs = []
    for d in drawings:
        jobs += [("explain", {**d, "layer": 3, "position": [5, 4, 4]}), ("backward", {**d, "label": 2})]
        jobs += [
            ("teach", {**d, "label": 6, "lr": 0.02}),
            ("explain", {**d, "layer": 0, "position": [1, 2, 3], "what": "gradient"}),
        ]
    serial = [json.dumps(getattr(api, name)(body)) for name, body in jobs]
    results = [None] * (8 * len(jobs))
    barrier = threading.Barrier(8)

    def work(t):
        barrier.wait()
        for k in range(len(jobs)):
            j = (k + t) % len(jobs)
            results[t * len(jobs) + k] = (j, json.dumps(getattr(api, jobs[j][0])(jobs[j][1])))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(answer == serial[j] for j, answer in results)


@pytest.mark.parametrize(
    "size, kernel, stride, padding",
    [(28, 5, 1, 2), (28, 8, 1, 0), (21, 4, 2, 0), (7, 3, 3, 1), (5, 9, 2, 1), (1, 1, 1, 0)],
)
def test_the_playground_gives_nanocnns_own_output_size_or_says_why_none(size, kernel, stride, padding, rng):
    api = api_for(PRESETS["default"].build((1, 28, 28), 10, rng))
    g = api.geometry(f"size={size}&kernel={kernel}&stride={stride}&padding={padding}")
    fits = size + 2 * padding >= kernel
    assert g["fits"] == fits and g["padded"] == size + 2 * padding
    if fits:
        layer = nc.Conv2d(1, 1, kernel, stride=stride, padding=padding)
        assert g["output"] == layer.output_shape((1, size, size))[1] == len(g["starts"])
        assert (
            g["starts"][-1] + kernel <= g["padded"] and g["unused"] == g["padded"] - g["starts"][-1] - kernel < stride
        )
    else:
        assert g["output"] == 0 and "larger than the padded input" in g["reason"] and g["formula"] is None


def test_answers_stay_small_for_a_large_model(rng):
    """512 channels on a 96 x 96 input: every answer is summarised, none near a megabyte per layer."""
    model = nc.Sequential(
        nc.Conv2d(1, 512, 3, padding=1, rng=rng),
        nc.ReLU(),
        nc.MaxPool2d(4),
        nc.Conv2d(512, 8, 3, rng=rng),
        nc.Flatten(),
        nc.Linear(8 * 22 * 22, 10, rng=rng),
    )
    api = api_for(model, (1, 96, 96))
    drawing = digit(rng, 96)
    sizes = {"predict": len(json.dumps(api.predict(drawing)))}
    deep = api.explain({**drawing, "layer": 3, "position": [2, 10, 10]})
    assert len(deep["terms"]["channels"]) == 16 and deep["terms"]["rest"]["count"] == 512 - 16
    assert adds_up(terms_total(deep), deep["value"], abs(deep["value"]) + 1)
    sizes["explain"] = len(json.dumps(deep))
    sizes["gradient"] = len(json.dumps(api.explain({**drawing, "layer": 2, "position": [0, 5, 5], "what": "gradient"})))
    sizes["backward"] = len(json.dumps(api.backward(drawing)))
    sizes["teach"] = len(json.dumps(api.teach({**drawing, "label": 1})))
    assert max(sizes.values()) < 4_000_000 and sizes["explain"] < 20_000 and sizes["gradient"] < 20_000, sizes
