"""`nanocnn serve`'s page in a real headless Chromium: digits drawn with mouse and touch strokes, every view drawn.

Needs Debian's Chromium (or NANOCNN_CHROMIUM) and the playwright package; without them these tests skip,
unless NANOCNN_REQUIRE_BROWSER=1 (as in CI), where they fail. NANOCNN_SCREENSHOT=docs/serve.png also writes
the README's screenshot (desktop size, after drawing a digit).
"""

import os
import re

import numpy as np
import pytest

from browsing import api_answer, bar_widths, draw, drawn, opened, save_screenshot, settled, trace
from nanocnn.data import bundled_path
from serving import call, serve_process, trained_model


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory):
    with serve_process(trained_model(tmp_path_factory), "--limit-test", "2000", "--quiet") as running:
        yield running


@pytest.fixture
def page(browser, server):
    with opened(browser, server, {"width": 1280, "height": 900}) as page:
        yield page


def check_views(page, answer):
    """Bars in the order of the probabilities, feature maps and saliency drawn."""
    widths, p = bar_widths(page), answer["probabilities"]
    assert len(widths) == len(p) == 10 and int(np.argmax(widths)) == answer["prediction"]
    for i in range(10):
        for j in range(10):
            if p[i] > p[j] + 0.02:
                assert widths[i] > widths[j], (i, j, widths, p)
    layers = page.locator("#features section.layer")
    assert layers.count() == len(answer["layers"]) == 13 + 1  # every layer of the default preset, then the softmax
    for n, layer in enumerate(answer["layers"]):
        title = layers.nth(n).locator("h3").inner_text()
        assert title.startswith(f"{n}: {layer['description']}"), title
        cells = drawn(page, f"#features section.layer:nth-child({n + 1}) canvas")
        assert len(cells) == (layer["shape"][0] if len(layer["shape"]) == 3 else 1), (n, len(cells))
        assert sum(c > 1 for c in cells) >= len(cells) // 2, (n, cells)  # most maps are not blank
    saliency = page.evaluate("""() => { const c = document.getElementById('saliency'); let red = 0, blue = 0;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 0; i < d.length; i += 4) { if (d[i] > d[i + 2] + 60) red++; if (d[i + 2] > d[i] + 60) blue++; }
        return [red, blue]; }""")
    assert saliency[0] > 5 and saliency[1] > 5, saliency
    assert drawn(page, "#input")[0] > 2


def test_hand_drawn_digits_are_recognised_and_every_view_is_drawn(page):
    for digit in ("1", "0", "2"):
        shown = draw(page, digit)
        answer = api_answer(page)
        assert shown == digit == str(answer["prediction"]), (digit, shown, answer["top"])
        check_views(page, answer)
        page.click("#clear")
        assert page.inner_text("#prediction") == "" and max(bar_widths(page)) == 0
        assert all(n == 1 for n in drawn(page, "#features canvas"))  # every cell empty: nothing drawn
    screenshot = os.environ.get("NANOCNN_SCREENSHOT")
    if screenshot:
        draw(page, "2")
        bottom = page.locator("#features-card").bounding_box()
        save_screenshot(
            page,
            screenshot,
            full_page=True,
            clip={"x": 0, "y": 0, "width": 1280, "height": bottom["y"] + bottom["height"] + 12},
        )


def test_traced_mnist_digits_get_the_api_s_answer_for_the_same_pixels(page):
    data = np.load(bundled_path())
    images, labels = data["testimages"][:3], data["testlabels"][:3]  # a 7, a 2 and a 1
    right = 0
    for image, label in zip(images, labels):
        shown = trace(page, image)
        answer = api_answer(page)
        assert shown == str(answer["prediction"]) and shown != ""
        right += int(shown) == label
        page.click("#clear")
    assert right >= 2, right


def test_random_test_images_and_mistakes_fill_the_views(page):
    page.click("#random")
    page.wait_for_selector("#sample-info:has-text('Test image')")
    info = page.inner_text("#sample-info")
    match = re.fullmatch(r"Test image ([\d,]+): label (\d), predicted (\d) \((right|wrong)\)", info)
    assert match and page.inner_text("#prediction") == match[3], info
    sample = call(page.port, "GET", f"/api/sample?kind=test&index={match[1].replace(',', '')}").json()
    check_views(page, sample)
    for rank in (1, 2):
        page.click("#mistake")
        page.wait_for_selector(f"#sample-info:has-text('Mistake {rank} of')")
        info = page.inner_text("#sample-info")
        match = re.search(r"label (\d), predicted (\d)$", info)
        assert match and match[1] != match[2] and page.inner_text("#prediction") == match[2], info
    assert drawn(page, "#pad")[0] > 2  # the test image is on the pad
    page.click("#clear")
    assert page.inner_text("#prediction") == page.inner_text("#sample-info") == ""


def test_a_phone_layout_and_a_touch_stroke_that_does_not_scroll(browser, server):
    with opened(
        browser, server, {"width": 360, "height": 800}, has_touch=True, is_mobile=True, device_scale_factor=2
    ) as page:
        assert page.evaluate("document.documentElement.scrollWidth") <= 360  # no horizontal scrollbar
        assert page.eval_on_selector("#pad", "p => getComputedStyle(p).touchAction") == "none"
        page.evaluate("window.scrollTo(0, 60)")
        before = page.evaluate("window.scrollY")
        box = page.locator("#pad").bounding_box()
        cdp = page.context.new_cdp_session(page)
        x = box["x"] + box["width"] / 2
        points = [box["y"] + box["height"] * t for t in np.linspace(0.15, 0.85, 12)]
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": points[0]}]})
        for y in points[1:]:  # a downward swipe: it would scroll the page, were it not a stroke
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        assert settled(page) == "1" and page.evaluate("window.scrollY") == before
        check_views(page, api_answer(page))
