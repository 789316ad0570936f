"""The page's explanations in Chromium: a picked number's terms add up to it on the default and the seed model (by
mouse, keyboard and touch), backward paints real gradients, teaching raises the taught label, the playground
explains every combination, and an accessibility audit finds nothing serious.

NANOCNN_SCREENSHOTS=docs also writes the README's screenshots of each view (docs/serve-*.png).
"""

import os
import re

import pytest

from browsing import drawn, opened, save_screenshot
from helpers import train_run
from serving import call, serve_process, trained_model

HEADER = re.compile(r"layer (\d+), output \[([\d, ]+)\] = ")


@pytest.fixture(scope="module")
def servers(browser, tmp_path_factory):
    """The default preset's model and the article's (seed preset: 8x8 kernels, a stride-2 conv, no ReLU)."""
    seed = tmp_path_factory.mktemp("seed") / "run"
    train_run(seed, "--preset", "seed", "--limit-train", 300, "--limit-test", 200)
    with serve_process(trained_model(tmp_path_factory), "--limit-test", "500", "--quiet") as default:
        with serve_process(seed, "--quiet") as article:
            yield {"default": default, "seed": article}


def sample(page):
    """Show a random test image; returns its index (what the page sends the API for it)."""
    page.click("#random")
    page.wait_for_selector("#sample-info:has-text('Test image')")
    page.wait_for_selector("#loss[data-loss]")
    return int(re.match(r"Test image ([\d,]+)", page.inner_text("#sample-info"))[1].replace(",", ""))


def panel_numbers(page, panel="#explain"):
    """(total, value) the panel shows, once it has an answer."""
    line = page.wait_for_selector(f"{panel} .sum")
    return float(line.get_attribute("data-total")), float(line.get_attribute("data-value"))


def adds_up(total, value):
    return abs(total - value) <= 1e-5 * (1 + abs(value))


def pick(page, layer, channel=0, at=(0.5, 0.45)):
    """Click a cell of a map (or row) in the strip; returns the panel's (total, value) and its header."""
    page.evaluate("document.querySelector('#explain').replaceChildren()")
    canvas = page.locator("#features section.layer").nth(layer).locator("canvas").nth(channel)
    box = canvas.bounding_box()
    canvas.click(position={"x": box["width"] * at[0], "y": box["height"] * at[1]})
    total, value = panel_numbers(page)
    return total, value, page.inner_text("#explain h3")


@pytest.mark.parametrize("model, convs", [("default", (0, 3, 7)), ("seed", (0, 1))])
def test_a_picked_conv_number_adds_up_and_is_the_apis(servers, browser, model, convs):
    server = servers[model]
    with opened(browser, server, {"width": 1280, "height": 900}) as page:
        index = sample(page)
        for layer in convs:
            total, value, header = pick(page, layer, channel=1)
            assert adds_up(total, value), (layer, total, value)
            found = HEADER.match(header)
            assert found and int(found[1]) == layer, header
            position = [int(v) for v in found[2].split(",")]
            answer = call(
                server.port, "POST", "/api/explain", {"sample": index, "layer": layer, "position": position}
            ).json()
            assert (answer["total"], answer["value"]) == (total, value)  # the page shows the server's numbers
            assert page.locator("#explain .term").count() >= 2 and page.locator("#explain canvas").count() >= 1
        last = page.locator("#features section.layer").count() - 1  # the softmax, then every other kind
        for layer in range(last, -1, -1):
            total, value, _ = pick(page, layer, at=(0.3, 0.6))
            assert adds_up(total, value), layer


def test_the_keyboard_reaches_every_number(servers, browser):
    with opened(browser, servers["default"], {"width": 1280, "height": 900}) as page:
        sample(page)
        map_ = page.locator("#features section.layer").nth(2).locator("canvas").nth(5)
        map_.focus()
        for key in ["ArrowRight"] * 3 + ["ArrowDown"] * 2 + ["Enter"]:
            page.keyboard.press(key)
        total, value = panel_numbers(page)
        assert adds_up(total, value) and page.inner_text("#explain h3").startswith("layer 2, output [5, 2, 3] = ")
        assert "row 2, column 3" in map_.get_attribute("aria-label")


def test_backward_paints_real_gradients_and_follows_the_picked_label(servers, browser):
    with opened(browser, servers["default"], {"width": 1280, "height": 900}) as page:
        sample(page)
        loss = float(page.get_attribute("#loss", "data-loss"))
        pressed = page.locator("#targets button[aria-pressed='true']").inner_text()
        assert pressed == page.inner_text("#prediction")  # the loss of the prediction, first
        colours = drawn(page, "#gradients canvas")
        assert len(colours) > 16 and sum(c > 1 for c in colours) > len(colours) // 2  # non-zero gradients
        assert all(c > 1 for c in drawn(page, "#kernel-gradients canvas"))
        other = str((int(pressed) + 1) % 10)
        page.click(f"#targets button:text-is('{other}')")
        page.wait_for_selector(f"#targets button[aria-pressed='true']:text-is('{other}')")
        assert float(page.get_attribute("#loss", "data-loss")) > loss  # a wrong label costs more
        canvas = page.locator("#gradients canvas").nth(0)  # the input image's gradient
        canvas.click(position={"x": 20, "y": 20})
        total, value = panel_numbers(page, "#backward-explain")
        assert adds_up(total, value) and f"label {other}" in page.inner_text("#backward-explain")
        if os.environ.get("NANOCNN_SCREENSHOTS"):
            save_screenshot(
                page.locator("#backward-card"), os.path.join(os.environ["NANOCNN_SCREENSHOTS"], "serve-backward.png")
            )


def test_teaching_a_wrong_label_raises_its_probability_and_changes_nothing_served(servers, browser):
    with opened(browser, servers["default"], {"width": 1280, "height": 900}) as page:
        index = sample(page)
        before = call(page.port, "GET", f"/api/sample?kind=test&index={index}&views=input").json()
        wrong = (before["prediction"] + 3) % 10
        page.fill("#lr", "0.02")
        page.click(f"#teach-labels button:text-is('This is a {wrong}')")
        taught = page.wait_for_selector("#teach-result .taught")
        assert float(taught.get_attribute("data-after")) > float(taught.get_attribute("data-before"))
        assert "(lr 0.02)" in taught.inner_text()
        assert all(c > 1 for c in drawn(page, "#teach-result canvas"))
        after = call(page.port, "GET", f"/api/sample?kind=test&index={index}&views=input").json()
        assert after["probabilities"] == before["probabilities"]  # the served model is unchanged
        if os.environ.get("NANOCNN_SCREENSHOTS"):
            save_screenshot(
                page.locator("#teach-card"), os.path.join(os.environ["NANOCNN_SCREENSHOTS"], "serve-teach.png")
            )


def test_the_playground_gives_the_output_size_and_explains_what_does_not_fit(servers, browser):
    with opened(browser, servers["default"], {"width": 1280, "height": 900}) as page:
        for size, kernel, stride, padding in [(28, 5, 1, 2), (21, 4, 2, 0), (7, 3, 3, 1)]:
            for name, v in zip(("size", "kernel", "stride", "padding"), (size, kernel, stride, padding)):
                page.fill(f"#g-{name}", str(v))
            expected = (size + 2 * padding - kernel) // stride + 1
            page.wait_for_selector(f"#geometry-result[data-output='{expected}']")
            assert f"= {expected}" in page.inner_text("#geometry-result") and drawn(page, "#geometry")[0] > 2
        if os.environ.get("NANOCNN_SCREENSHOTS"):
            save_screenshot(
                page.locator("#playground-card"),
                os.path.join(os.environ["NANOCNN_SCREENSHOTS"], "serve-playground.png"),
            )
        page.fill("#g-kernel", "40")  # larger than the padded input: said, not an error
        page.wait_for_selector("#geometry-result:has-text('No window fits')")
        assert "larger than the padded input" in page.inner_text("#geometry-result")
        page.fill("#g-size", "0")  # not a size at all: the server's message, shown
        page.wait_for_selector("#geometry-result:has-text('Not a shape nanocnn takes')")
        assert "input H must be a whole number from 1 to 256, got 0" in page.inner_text("#geometry-result")


@pytest.mark.parametrize("width", [1280, 360])
def test_taps_a_narrow_screen_and_an_accessibility_audit(servers, browser, width):
    """Readable at 360 px, a tap explains a number there, and axe-core finds no serious or critical violation."""
    from axe_playwright_python.sync_playwright import Axe

    phone = dict(has_touch=True, is_mobile=True, device_scale_factor=2) if width == 360 else {}
    with opened(browser, servers["default"], {"width": width, "height": 800}, **phone) as page:
        sample(page)
        canvas = page.locator("#features section.layer").nth(3).locator("canvas").nth(2)
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        if width == 360:
            page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        else:
            canvas.click(position={"x": box["width"] / 2, "y": box["height"] / 2})
        total, value = panel_numbers(page)
        assert adds_up(total, value)
        if width == 360 and os.environ.get("NANOCNN_SCREENSHOTS"):  # the viewport: the panel, scrolled to
            save_screenshot(page, os.path.join(os.environ["NANOCNN_SCREENSHOTS"], "serve-phone.png"))
        page.click("#teach-labels button >> nth=4")
        page.wait_for_selector("#teach-result .taught")
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
        if width == 1280 and os.environ.get("NANOCNN_SCREENSHOTS"):
            save_screenshot(
                page.locator("#features-card"), os.path.join(os.environ["NANOCNN_SCREENSHOTS"], "serve-explain.png")
            )
        violations = Axe().run(page).response["violations"]
        serious = [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"][:3]])
            for v in violations
            if v["impact"] in ("serious", "critical")
        ]
        assert serious == []
