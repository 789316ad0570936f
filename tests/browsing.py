"""What the browser tests share: Chromium driven by Playwright, a page opened on a server with its errors
collected, strokes drawn like a hand, and what the canvases hold.

Needs Debian's Chromium (or NANOCNN_CHROMIUM) and the playwright package; without them the browser tests skip,
unless NANOCNN_REQUIRE_BROWSER=1 (as in CI), where they fail.
"""

import importlib.util
import math
import os
from contextlib import contextmanager

import numpy as np

from serving import call

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
        assert problems == [], problems
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


def save_screenshot(target, path, **options):
    """A screenshot of a page or an element (``target.screenshot(**options)``) as a small PNG: 256 colours,
    optimised (the README's pictures in docs/)."""
    import io

    from PIL import Image

    png = target.screenshot(**options)
    Image.open(io.BytesIO(png)).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)
