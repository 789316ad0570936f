"""The README's Python blocks, run in order in one process as a reader pastes them (on fewer images), each
doing what its text says. A block that needs something of the reader's (a running server, a file, PyTorch)
starts with a "# needs: ..." line and is skipped by that mark."""

import re
from pathlib import Path

import numpy as np

import nanocnn as nc

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks():
    """Every ```python block of the README, in order, dedented (some sit in a list item)."""
    blocks = re.findall(r"^( *)```python\n(.*?)^\1```", README.read_text(), re.S | re.M)
    return [re.sub(rf"^{indent}", "", code, flags=re.M) for indent, code in blocks]


def mean_loss(model, data):
    was = model.training
    loss = nc.softmax_cross_entropy(model.eval()(data.train.images[:2000]), data.train.labels[:2000])[0]
    model.train(was)
    return loss


def test_every_python_block_does_what_the_readme_says(tmp_path, monkeypatch, capsys):
    blocks = python_blocks()
    needs = [b for b in blocks if b.startswith("# needs:")]
    assert len(blocks) == 6 and len(needs) == 2
    monkeypatch.chdir(tmp_path)
    from nanocnn.nn import registry

    # a fresh session: the README's Scale, not another test's class of that name, gets registered
    monkeypatch.setattr(registry, "LAYERS", {k: v for k, v in registry.LAYERS.items() if k != "Scale"})
    ns = {"__name__": "readme"}
    for block in blocks:
        if block in needs:
            continue
        before = None
        if "DataParallel" in block:  # the threads example trains the model nc.load gave back
            before = ({k: v.copy() for k, v in ns["model"].state_dict().items()}, mean_loss(ns["model"], ns["data"]))
        exec(compile(block.replace("limit_train=10000", "limit_train=2000"), "README.md", "exec"), ns)
        printed = capsys.readouterr().out
        if "nc.save(model" in block:  # the first example: trained, saved, loaded back
            assert (tmp_path / "model.npz").exists() and ns["probabilities"].shape == (10_000, 10)
            assert (ns["probabilities"].argmax(axis=1) == ns["data"].test.labels).mean() > 0.8
            assert "total" in printed and isinstance(ns["model"], nc.Sequential)
        if "resnet.summary" in block:  # the new layers, nested rows in the summary
            assert "5.shortcut: Conv2d(16, 32, kernel_size=1, stride=2)" in printed
        if before is not None:  # the threads example changes every weight and lowers the loss
            state, loss = before
            after = ns["model"].state_dict()
            assert all(not np.array_equal(state[k], after[k]) for k in state)
            assert mean_loss(ns["model"], ns["data"]) < loss
        if "class Scale" in block:  # the layer of "Writing your own layer" trains in a model
            x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
            assert ns["model"](x).shape == (2, 10) and type(ns["model"][1]).__name__ == "Scale"
