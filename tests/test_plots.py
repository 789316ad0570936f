"""Every plot kind writes a valid PNG of the expected pixel size from a freshly trained tiny model."""

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


def png_size(path):
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def test_train_writes_learning_curves(run_dir):
    assert png_size(run_dir / "curves.png") == (1000, 400)


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
    width, height = png_size(target)
    if size:
        assert (width, height) == size
    assert 400 <= width <= 2000 and 300 <= height <= 2500


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
