"""The layout the code promises (README, "Architecture"): one package per stage, imports that only
point down, LaTeX's runner free of pandoc and the cache, short functions.

The import graph is read from the source (every ``import``, inside functions too), one node per
sub-package of ``filters/`` (``filters/pandoc/``, ``filters/latex/`` …), per module directly in
``filters/``, and one for ``engine/`` and ``tools/``; a module's level is one more than the highest
level it imports.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest
from conftest import ROOT

MAX_LEVELS = 9
MAX_FUNCTION_LINES = 60
# The order of the stages, top down: a package imports only those after it (README, "Architecture").
STAGES = ["cli", "pipeline", "pandoc", "workers", "kinds", "cache", "figures", "blocks", "latex", "util"]


def _modules() -> dict[str, Path]:
    """Every module of engine/, filters/ and tools/, by dotted name."""
    found = {}
    for package in ("engine", "filters", "tools"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ours that module ``name`` imports, anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:  # `from filters.latex import log` names the module filters.latex.log
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {m for m in found if m in modules}


def _node(module: str) -> str:
    """The node of the layout a module belongs to."""
    parts = module.split(".")
    if parts[0] in ("engine", "tools") or len(parts) == 1:
        return parts[0]
    return ".".join(parts[:2])


@functools.cache
def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        own = _node(name)
        graph.setdefault(own, set()).update(_node(m) for m in _imports(name, path, modules) if _node(m) != own)
    return graph


def _levels(graph: dict[str, set[str]]) -> dict[str, int]:
    levels: dict[str, int] = {}

    def level(node: str, path: tuple[str, ...]) -> int:
        assert node not in path, f"an import circle: {' → '.join((*path, node))}"
        if node not in levels:
            levels[node] = 1 + max((level(n, (*path, node)) for n in graph.get(node, ())), default=0)
        return levels[node]

    for node in graph:
        level(node, ())
    return levels


def test_imports_make_no_circle_and_at_most_nine_levels():
    levels = _levels(_graph())
    tower = sorted(levels, key=levels.get, reverse=True)
    assert max(levels.values()) <= MAX_LEVELS, f"{max(levels.values())} levels: {tower}"


def test_every_import_points_down_the_stages():
    graph = _graph()
    for node, imported in graph.items():
        if not node.startswith("filters.") or node.split(".")[1] not in STAGES:
            continue
        below = STAGES[STAGES.index(node.split(".")[1]) + 1:]
        up = sorted(m for m in imported if m.startswith("filters.") and m.split(".")[1] in STAGES
                    and m.split(".")[1] not in below)
        assert not up, f"{node} imports {up}, which stand above it"


def test_the_latex_runner_knows_nothing_of_pandoc_the_filter_or_the_cache():
    """Running LaTeX (like latexmk) depends on the small shared helpers only."""
    modules = _modules()
    seen, todo = set(), [m for m in modules if m.startswith("filters.latex")]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += _imports(module, modules[module], modules)
    allowed = ("filters.latex", "filters.util", "filters.errors", "filters")
    assert {m for m in seen if not m.startswith(allowed)} == set()
    text = "\n".join(modules[m].read_text() for m in seen)
    assert "panflute" not in text and "pypandoc" not in text


@pytest.mark.parametrize("package", ["engine", "filters"])
def test_no_function_is_longer_than_sixty_lines(package):
    long = [f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path in sorted((ROOT / package).rglob("*.py"))
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []


def test_the_environment_is_read_only_where_pandoc_starts_the_filter():
    """Settings are values: the build hands the filter a BuildSettings; only its from_environment
    (pandoc -F) reads ATTNSLIDES_* variables of the build, and nothing writes them."""
    readers = []
    for name, path in _modules().items():
        text = path.read_text()
        for variable in ("ATTNSLIDES_DECK", "ATTNSLIDES_OUTPUT_DIR", "ATTNSLIDES_FIGURES_DIR", "ATTNSLIDES_DEVICE",
                         "ATTNSLIDES_EXECUTE", "PANDOC_VERSION"):
            if f'"{variable}"' in text:
                readers.append(name)
    assert sorted(set(readers)) == ["filters.pandoc.settings"]


def test_the_tests_read_the_projects_lectures_not_every_deck_in_slides():
    """Before: five tests globbed slides/*.md, so a lecturer's own deck there (one that times
    something, say) failed the project's tests. They take conftest's LECTURES."""
    here = Path(__file__).resolve().parent
    needle = '"slides")' + ".glob("  # written in two, so that this file does not hold it
    globbing = [p.name for p in here.glob("test_*.py") if needle in p.read_text(encoding="utf-8")]
    assert globbing == []
