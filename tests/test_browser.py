"""`nanocnn serve`'s page in a real headless Chromium: digits drawn with mouse and touch strokes, every view drawn.

Needs Debian's Chromium (or NANOCNN_CHROMIUM) and the playwright package; without them these tests skip,
unless NANOCNN_REQUIRE_BROWSER=1 (as in CI), where they fail. NANOCNN_SCREENSHOT=docs/serve.png also writes
the README's screenshot (desktop size, after drawing a digit).
"""

import importlib.util
import math
import os
import re
from contextlib import contextmanager

import numpy as np
import pytest

from nanocnn.data import bundled_path
from serving import call, serve_process, trained_model

CHROMIUM = os.environ.get("NANOCNN_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"]
WAIT_MS = 15000


def missing():
    """Why the browser tests cannot run here, or None."""
    if not os.path.exists(CHROMIUM):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set NANOCNN_CHROMIUM)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install playwright)"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = missing()
    if reason:
        if os.environ.get("NANOCNN_REQUIRE_BROWSER") == "1":
            pytest.fail(f"NANOCNN_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory):
    with serve_process(trained_model(tmp_path_factory), "--limit-test", "2000", "--quiet") as running:
        yield running


@pytest.fixture
def page(browser, server):
    with opened(browser, server, {"width": 1280, "height": 900}) as page:
        yield page


@contextmanager
def opened(browser, server, viewport, **options):
    """A fresh page on the server; at the end, no JavaScript error and no console error may have happened."""
    context = browser.new_context(viewport=viewport, **options)
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        problems = []
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.sent = []  # the bodies of the page's own POST /api/predict requests, in order
        page.on("request", lambda r: page.sent.append(r.post_data_json) if r.url.endswith("/api/predict") else None)
        page.goto(f"http://127.0.0.1:{server.port}/")
        # Playwright's wait_for_function polls with eval(), which the page's CSP forbids: wait on selectors.
        page.wait_for_selector("#probabilities .bar-row:nth-child(10) .bar", state="attached")
        page.wait_for_selector("#random:not([disabled])")
        page.port = server.port
        yield page
        assert problems == []
    finally:
        context.close()


def stroke(page, points, steps=1):
    """A mouse stroke through points given in pad units (0..1 across, 0..1 down)."""
    box = page.locator("#pad").bounding_box()
    xy = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=steps)
    page.mouse.up()


def arc(cx, cy, rx, ry, start, end, n=24):
    """Points on an ellipse from angle start to end (degrees, 0 = right, 90 = down)."""
    angles = np.radians(np.linspace(start, end, n))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


# Hand-drawn digits: each a list of strokes, in pad units.
DIGITS = {
    "1": [[(0.53, 0.14), (0.50, 0.50), (0.47, 0.86)]],
    "0": [arc(0.5, 0.5, 0.24, 0.35, -90, 275, 28)],
    "2": [
        arc(0.5, 0.34, 0.21, 0.19, 200, 380, 16)
        + [(0.60, 0.55), (0.44, 0.70), (0.28, 0.84), (0.52, 0.84), (0.76, 0.83)]
    ],
}


def draw(page, digit):
    for points in DIGITS[digit]:
        stroke(page, points)
    return settled(page)


def trace(page, image):
    """Draw an MNIST digit (28, 28) by tracing its ink: a horizontal mouse stroke along each run of ink in every
    other row (the pen is two of the digit's pixels wide)."""
    for r in range(1, 28, 2):
        ink = np.flatnonzero(image[r - 1 : r + 1].max(axis=0) > 127)
        for run in np.split(ink, np.flatnonzero(np.diff(ink) > 1) + 1) if len(ink) else []:
            stroke(page, [((run[0] + 0.5) / 28, r / 28), ((run[-1] + 0.5) / 28, r / 28)], steps=1)
    return settled(page)


def settled(page):
    """Wait until the page has the answer for its latest drawing; return #prediction's text."""
    page.wait_for_selector('#prediction-card[aria-busy="false"]')
    return page.inner_text("#prediction")


def api_answer(page):
    """The API's answer for exactly what the page sent last (the drawing its views now show), asked again."""
    body = page.sent[-1]
    assert body["width"] * body["height"] == len(body["pixels"]) and set(body["views"]) == {
        "input",
        "saliency",
        "layers",
    }
    return call(page.port, "POST", "/api/predict", body).json()


def bar_widths(page):
    page.wait_for_timeout(250)  # the bars' width transition (0.12 s) is over
    return page.eval_on_selector_all("#probabilities .bar", "bars => bars.map(b => b.getBoundingClientRect().width)")


def drawn(page, selector):
    """For each canvas matching selector: how many distinct colours it holds (1 = blank)."""
    return page.eval_on_selector_all(
        selector,
        """canvases => canvases.map(c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, seen = new Set();
        for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        return seen.size; })""",
    )


def check_views(page, answer):
    """Bars in the order of the probabilities, feature maps and saliency drawn."""
    widths, p = bar_widths(page), answer["probabilities"]
    assert len(widths) == len(p) == 10 and int(np.argmax(widths)) == answer["prediction"]
    for i in range(10):
        for j in range(10):
            if p[i] > p[j] + 0.02:
                assert widths[i] > widths[j], (i, j, widths, p)
    layers = page.locator("#features section.layer")
    assert layers.count() == len(answer["layers"]) == 8  # every layer of the default preset, in order
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
        save_screenshot(page, screenshot)


def save_screenshot(page, path):
    """The whole page as a small PNG: 256 colours, optimised (the README's docs/serve.png)."""
    import io

    from PIL import Image

    png = page.screenshot(full_page=True)
    Image.open(io.BytesIO(png)).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)


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
