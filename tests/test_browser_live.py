"""The live page in Chromium, as a learner watches a short run: the loss curve grows, the filters change between
two looks, the probe accuracy rises, the end shows the command to explore the model; readable at 360 px, no
console error, and axe-core finds no serious or critical violation. `nanocnn serve` of that run shows its
learning curves. NANOCNN_SCREENSHOTS=docs also writes the README's picture (docs/live.png)."""

import os
import re
import subprocess
import sys
import time

import pytest

from browsing import WAIT_MS, save_screenshot
from serving import default_sigint, serve_process, stop

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A default run of 3 epochs on 30,000 images with --live --keep-serving: (port, run folder)."""
    folder = tmp_path_factory.mktemp("live")
    options = ["--limit-train", "30000", "--limit-test", "2000", "--epochs", "3", "--no-progress"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "nanocnn", "train", "--live", "--port", "0", "--keep-serving", *options, "--out", "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=folder,
        preexec_fn=default_sigint,
    )
    try:
        line = proc.stdout.readline()
        match = re.fullmatch(r"watching on http://127\.0\.0\.1:(\d+)/\n", line)
        assert match, line
        yield int(match[1]), folder / "run"
    finally:
        stop(proc)


def look(page):
    """What the page shows now: (step, loss points, probe accuracy %, filter captions)."""
    step = int(page.get_attribute("body", "data-step"))
    loss = page.inner_text("#loss-now")
    probe = float(re.search(r"Probe now: ([\d.]+)%", page.inner_text("#accuracy-now"))[1])
    return step, loss, probe, page.locator("#filters figcaption").all_inner_texts()


def test_watching_a_run_learn(run, browser):
    from axe_playwright_python.sync_playwright import Axe

    port, folder = run
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    problems = []
    try:
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_selector("body[data-status=training]")
        first = look(page)
        time.sleep(3.5)
        second = look(page)
        assert second[0] > first[0] and second[1] != first[1]  # more steps, a new loss point
        assert second[3] != first[3] and len(second[3]) == 16  # the filters moved between the two looks
        page.wait_for_selector("body[data-status=done]", timeout=120_000)
        last = look(page)
        assert last[2] >= first[2] and last[2] > 90  # the probe accuracy rose, to what a trained network gets
        assert page.is_visible("#done") and page.inner_text("#serve-command") == "nanocnn serve run"
        assert "test accuracy" in page.inner_text("#done-text")
        wrong = page.locator(".digit.wrong").count()
        assert f"{wrong} of 36 wrong now." in page.inner_text("#digits-now")
        if os.environ.get("NANOCNN_SCREENSHOTS"):
            save_screenshot(page, os.path.join(os.environ["NANOCNN_SCREENSHOTS"], "live.png"), full_page=True)
        for width in (1280, 360):
            page.set_viewport_size({"width": width, "height": 800})
            page.wait_for_timeout(300)
            assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
            serious = [
                (v["id"], v["impact"], [n["target"] for n in v["nodes"][:3]])
                for v in Axe().run(page).response["violations"]
                if v["impact"] in ("serious", "critical")
            ]
            assert serious == [], width
        assert problems == []
    finally:
        context.close()


def test_serve_shows_the_runs_learning_curves(run, browser):
    _, folder = run
    while not (folder / "model.npz").exists() or len((folder / "metrics.csv").read_text().splitlines()) < 4:
        time.sleep(0.5)  # the run above finished its 3 epochs
    with serve_process(folder) as server:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(f"http://127.0.0.1:{server.port}/")
            page.wait_for_selector("#curves-card:not([hidden])")
            assert page.inner_text("#curves-source") == "run/metrics.csv"
            assert page.locator("#curves-accuracy-legend .legend-item").all_inner_texts() == ["train", "test"]
            label = page.get_attribute("#curves-accuracy", "aria-label")
            assert label.startswith("Accuracy by epoch; after epoch 3: train 0.9")
        finally:
            context.close()
