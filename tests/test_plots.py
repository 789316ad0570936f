"""Every plot kind writes a PNG of the expected size that shows something: ink, colours, and what it plots."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402

from helpers import train_run  # noqa: E402
from nanocnn.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("plots") / "run"
    train_run(out, "--epochs", 2, "--limit-train", 500, "--limit-test", 200)
    return out


TRAIN, TEST = (31, 119, 180), (255, 127, 14)  # matplotlib's first two line colours: the train and test curves


def pixels(path):
    """The PNG's pixels (H, W, 3), after checking that it is a PNG with content: a blank figure, or axes with
    nothing in them, has almost no ink and few colours."""
    with Image.open(path) as im:
        assert im.format == "PNG"
        rgb = np.asarray(im.convert("RGB"))
    ink = (rgb < 235).any(axis=2).mean()  # share of pixels that are not white (or nearly)
    colours = len(np.unique(rgb.reshape(-1, 3), axis=0))
    assert ink > 0.03 and colours > 40, (path, ink, colours)
    return rgb


def count(rgb, colour):
    return int((rgb == colour).all(axis=2).sum())


def test_train_writes_learning_curves(run_dir):
    rgb = pixels(run_dir / "curves.png")
    assert rgb.shape == (400, 1000, 3)
    assert count(rgb, TRAIN) > 100 and count(rgb, TEST) > 100  # both curves drawn, in both panels
    assert count(rgb[:, :500], TRAIN) > 50 and count(rgb[:, 500:], TEST) > 50


@pytest.mark.parametrize(
    "argv, name, size",
    [
        (["curves", "{run}"], "curves.png", (1000, 400)),
        (["filters", "{run}/model.npz"], "filters.png", None),
        (["features", "{run}", "--index", "3", "--limit-test", "10"], "features.png", None),
        (["confusion", "{run}", "--limit-test", "200"], "confusion.png", (700, 610)),
        (["mistakes", "{run}", "--limit-test", "200"], "mistakes.png", None),
    ],
)
def test_each_plot_writes_a_png(run_dir, tmp_path, capsys, argv, name, size):
    target = tmp_path / name
    argv = [a.format(run=run_dir) for a in argv]
    assert main(["plot", *argv, "-o", str(target)]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    height, width, _ = pixels(target).shape
    if size:
        assert (width, height) == size
    assert 400 <= width <= 2000 and 300 <= height <= 2500


@pytest.mark.slow
def test_the_pictures_depend_on_what_they_show(run_dir, tmp_path):
    """Two test images give two different feature plots; the filters plot holds the first layer's 16 filters,
    drawn in the diverging colours of their weights (red and blue, not grey)."""
    for index in (3, 4):
        out = str(tmp_path / f"{index}.png")
        assert main(["plot", "features", str(run_dir), "--index", str(index), "-o", out]) == 0
    assert not np.array_equal(pixels(tmp_path / "3.png"), pixels(tmp_path / "4.png"))
    assert main(["plot", "filters", str(run_dir), "-o", str(tmp_path / "f.png")]) == 0
    rgb = pixels(tmp_path / "f.png").astype(int)
    red = ((rgb[..., 0] - rgb[..., 2]) > 80).sum()
    blue = ((rgb[..., 2] - rgb[..., 0]) > 80).sum()
    assert red > 200 and blue > 200, (red, blue)


def test_default_output_goes_beside_the_model(run_dir, capsys):
    assert main(["plot", "filters", str(run_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / "filters.png")
    assert (run_dir / "filters.png").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["plot", "features", "{run}"], "one of the arguments --index --image is required"),
        (
            ["plot", "features", "{run}", "--index", "50", "--limit-test", "10"],
            "--index must be below the 10 test images",
        ),
        (["plot", "curves", "{tmp}"], "is not a run folder: no metrics.csv"),
        (["plot", "scatter", "{run}"], "invalid choice: 'scatter'"),
        (["plot", "filters", "{tmp}/none.npz"], "model file not found"),
    ],
)
def test_bad_plot_arguments(run_dir, tmp_path, capsys, argv, message):
    assert main([a.format(run=run_dir, tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
