"""The package's shape, read from its source: folders by concept, no import cycle, the teaching core apart from
the speed code, and no file too long to read."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "nanocnn"
MAX_LINES = 300


def module_name(path):
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name):
    path = SRC.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports():
    """module -> the set of nanocnn modules it imports (anywhere in the file, functions included)."""
    graph = {}
    for path in SRC.rglob("*.py"):
        name, package = module_name(path), module_name(path) if path.name == "__init__.py" else None
        package = package or name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("nanocnn")}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: up level - 1 packages from this one
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                if not base.startswith("nanocnn"):
                    continue
                for alias in node.names:
                    found.add(f"{base}.{alias.name}" if is_module(f"{base}.{alias.name}") else base)
        graph[name] = found - {name}
    return graph


def test_no_import_cycle_among_the_packages_modules():
    graph = imports()
    assert "nanocnn.nn.sequential" in graph and "nanocnn.backend.inference" in graph["nanocnn.nn.sequential"]
    state = {}  # module -> "open" while on the path, "done" after

    def visit(module, path):
        state[module] = "open"
        for other in sorted(graph.get(module, ())):
            assert state.get(other) != "open", "import cycle: " + " -> ".join(path + [module, other])
            if other not in state:
                visit(other, path + [module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_the_backend_never_imports_the_teaching_core():
    """nn/ calls backend/, never the reverse: the core reads top to bottom without the speed code in it."""
    graph = imports()
    backend = {m: deps for m, deps in graph.items() if m.startswith("nanocnn.backend")}
    assert len(backend) >= 8
    for module, deps in backend.items():
        assert not [d for d in deps if d.startswith("nanocnn.nn")], module


def test_folders_by_concept_and_no_file_too_long():
    top = sorted(p.name for p in SRC.iterdir() if p.suffix == ".py")
    assert top == ["__init__.py", "__main__.py", "plots.py", "validation.py", "version.py"]
    packages = sorted(p.name for p in SRC.iterdir() if (p / "__init__.py").is_file())
    assert packages == ["backend", "cli", "data", "exercises", "io", "nn", "parallel", "serve", "train"]
    long = {}
    for path in SRC.rglob("*"):
        if path.suffix in (".py", ".js", ".css", ".html"):
            lines = len(path.read_text().splitlines())
            if lines > MAX_LINES:
                long[str(path.relative_to(SRC))] = lines
    assert long == {}


def test_the_readme_map_has_one_line_per_folder():
    readme = (SRC.parent.parent / "README.md").read_text()
    block = readme.split("## How it is built", 1)[1].split("```", 2)[1]
    for folder in ("nn/", "backend/", "train/", "parallel/", "io/", "data/", "serve/", "cli/", "exercises/"):
        lines = [line for line in block.splitlines() if line.strip().startswith(folder)]
        assert len(lines) == 1, (folder, lines)


def test_every_section_of_docs_math_the_page_names_exists():
    """The page and its explanations name sections of docs/math.md ("docs/math.md: Convolution, Forward"): each
    name must be a heading there, or the learner looks for a section that is not there."""
    import re

    headings = {
        line.lstrip("#").strip()
        for line in (SRC.parent.parent / "docs" / "math.md").read_text().splitlines()
        if line.startswith("#")
    }
    named = set()
    for path in (SRC / "serve").rglob("*"):
        if path.suffix in (".py", ".js", ".html"):
            named |= set(re.findall(r"docs/math\.md: ([A-Z][^)\"<\n]*?)(?:\)|\"|\.?$)", path.read_text(), re.M))
    assert len(named) >= 8, named
    for name in named:
        for part in re.split(r",\s*", name.strip()):
            assert part in headings, (name, part)
