"""The tutorial's notebooks (docs/tutorial/) run from a clean kernel, top to bottom, as a learner runs them:
every exercise's check says "not yet" for the empty exercise and "right" for the teachers' solution; they use
only the public API, and every section of docs/math.md they link to exists."""

import re
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial"
NOTEBOOKS = sorted(TUTORIAL.glob("*.ipynb"))
SOLUTION = {"PReLU": "solutions.prelu_class()"}  # a class; the others are functions of the same name


def test_six_notebooks_each_ending_with_exercises():
    assert [p.name[:3] for p in NOTEBOOKS] == ["01-", "02-", "03-", "04-", "05-", "06-"]
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        exercises = [c for c in nb.cells if c.metadata.get("exercise")]
        assert exercises, path.name
        for cell in exercises:
            assert "# your code here" in cell.source
        # committed run, with its outputs, so that a reader sees the numbers and pictures without running it
        assert all(c.execution_count for c in nb.cells if c.cell_type == "code"), path.name


def test_only_the_public_api_and_links_that_exist():
    headings = {
        re.sub(r"[^a-z0-9 -]", "", h.strip("# \n").lower()).replace(" ", "-")
        for h in (ROOT / "docs" / "math.md").read_text().splitlines()
        if h.startswith("#")
    }
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert "nanocnn.backend" not in code and not re.search(r"\bnc\._|nanocnn\.\w+\._", code), path.name
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        for anchor in re.findall(r"\(\.\./math\.md#([^)]+)\)", text):
            assert anchor in headings, f"{path.name}: docs/math.md#{anchor}"
        for target in re.findall(r"\]\((\.\./[^)#]+|[\w.-]+\.py)", text):
            assert (TUTORIAL / target).exists(), f"{path.name}: {target}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_notebook_runs_and_its_checks_answer(path, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the runs a notebook trains go to pytest's folder
    nb = nbformat.read(path, as_version=4)
    checks = []  # (index of the check cell run on the empty exercise, index of the one run on the solution)
    for i, cell in enumerate(nb.cells):
        if cell.metadata.get("exercise"):
            name = cell.metadata["exercise"]
            check = next(j for j in range(i + 1, len(nb.cells)) if nb.cells[j].cell_type == "code")
            nb.cells.append(
                nbformat.v4.new_code_cell(  # by path: a notebook may have changed its working folder
                    f"import sys\nsys.path.insert(0, {str(TUTORIAL)!r})\nimport solutions\n"
                    f"{name} = {SOLUTION.get(name, f'solutions.{name}')}"
                )
            )
            nb.cells.append(nbformat.v4.new_code_cell(nb.cells[check].source))
            checks.append((check, len(nb.cells) - 1))
    start = time.perf_counter()
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(TUTORIAL)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    print(f"{path.name}: {time.perf_counter() - start:.1f} s")

    def said(index):
        outputs = nb.cells[index].outputs
        return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)

    for empty, solved in checks:
        assert said(empty).startswith("not yet: "), said(empty)
        assert said(solved).startswith("right: "), said(solved)
