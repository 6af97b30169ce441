"""The registry: every kind is complete, its data is what its TypedDict says, and nothing outside a
kind's file names it."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import typing

import panflute as pf
import pytest
from conftest import ROOT

from filters.blocks.kind import Kind
from filters.blocks.labels import LANGUAGES
from filters.blocks.options import parse_options
from filters.figures.entry import produce
from filters.kinds import KINDS


class StubOut:
    """What the filter gives a kind's ``write`` (filters.kind.Out), without a document."""

    def __init__(self, fmt, figures):
        self.fmt, self.identifier, self.lang, self.figures, self.classes = fmt, "x", "es", figures, []

    def figure(self, n=1, *, height=None, caption=None):
        assert 1 <= n <= self.figures
        return pf.Para(pf.Str(f"figure {n}"))

    def markdown(self, text):
        return [pf.Str(text)]


@pytest.mark.parametrize("name", sorted(KINDS))
def test_data_is_what_the_kinds_typeddict_declares(name, tmp_path):
    """compute's (or make's) return annotation is the kind's TypedDict, which the README's Data lines
    describe; the data must have exactly its keys, survive JSON, and draw (or write) in every language."""
    kind = KINDS[name]
    if kind.unavailable():
        pytest.skip(kind.unavailable())
    options = parse_options(kind.options, {}, _example_body(kind))
    declared = typing.get_type_hints(kind.make or kind.compute)["return"]
    for lang in LANGUAGES:
        folder = tmp_path / lang
        folder.mkdir()
        data = produce(kind, options, folder, ext="png", device="cpu", lang=lang)
        assert set(data) == set(typing.get_type_hints(declared)), f"{declared.__name__} and the data disagree"
        assert json.loads(json.dumps(data)) == data
        pictures = sorted(folder.glob("figure-*.png"))
        assert (len(pictures) == 1) if kind.output == "figure" else (not pictures) if kind.output == "text" else True
        if kind.write:
            for fmt in ("beamer", "revealjs"):
                assert kind.write(data, options, StubOut(fmt, len(pictures))) is not None


def _example_body(kind) -> str:
    """The body of the kind's block in the starter deck (a .run block needs its code)."""
    block = kind.examples["es"].split("```", 2)[1]
    return block.split("\n", 1)[1] if "\n" in block else ""


def test_an_incomplete_kind_is_named_when_the_registry_loads(tmp_path):
    for package in ("engine", "filters"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "filters" / "kinds" / "incomplete.py").write_text(
        "from dataclasses import dataclass\n"
        "from filters.blocks.kind import Kind\n"
        "from filters.blocks.options import FigureOptions\n\n"
        "@dataclass(frozen=True)\n"
        "class IncompleteOptions(FigureOptions):\n"
        "    '''``.incomplete``: a kind that forgot its English caption.'''\n\n"
        "KIND = Kind(name='incomplete', options=IncompleteOptions, compute=lambda o, d: {}, output='figure',\n"
        "            draw=lambda d, o, l: None, cost=1, captions={'es': 'Una figura.'}, examples={'es': '', 'en': ''})\n")
    done = subprocess.run([sys.executable, "-c", "import filters.kinds"], cwd=tmp_path, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(tmp_path)))
    assert done.returncode != 0
    assert "KindError: kind .incomplete (filters.kinds.incomplete) is incomplete" in done.stderr
    assert "missing: en" in done.stderr


def test_kind_problems_name_each_missing_piece():
    attention = KINDS["attention"]
    assert Kind("x", attention.options, attention.compute, "figure", 1).problems() == [
        "options need a docstring starting ``.x``: and saying what the block shows",
        "a figure kind needs draw(data, options, labels) -> Figure",
        "a figure kind needs a default caption in every language; missing: es, en",
        "an example block for the starter deck is missing in: es, en",
    ]
    text = Kind("attention", attention.options, attention.compute, "text", -1, captions=attention.captions,
                examples=attention.examples, labels={"es": {"a": "a", "query": "q"}, "en": {"query": "q"}})
    assert text.problems() == [
        "cost must be a number >= 0, not -1",
        "a 'text' kind needs write(data, options, out) -> panflute.Block",
        "a 'text' kind has no default caption, so it must not declare captions",
        "labels in 'en' lack a",
        "labels query are shared ones (filters.blocks.labels); use those",
    ]
    pictures = Kind("attention", attention.options, attention.compute, "figures", 1, examples=attention.examples)
    assert pictures.problems() == [
        "a 'figures' kind needs make(options, folder, *, ext, device, lang, home, project) -> data",
        "a 'figures' kind needs write(data, options, out) -> panflute.Block",
    ]
    bad_caption = Kind("attention", attention.options, attention.compute, "figure", 1, draw=attention.draw,
                       examples=attention.examples, captions={"es": "Pesos de «{frase}»", "en": "Weights of {sentence}"})
    assert bad_caption.problems() == ["the caption in 'es' cannot be filled from the options: KeyError: 'frase'"]


def test_nothing_outside_a_kinds_file_names_it():
    """A kind is its file: the shared stages must not branch on a kind's name (STYLE.md)."""
    names = set(KINDS) | {f".{name}" for name in KINDS}
    for path in sorted((ROOT / "filters").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names:
                pytest.fail(f"{path.name}:{node.lineno} names the kind {node.value!r}")


def test_the_readme_walkthrough_kind_and_its_test_work_as_printed(tmp_path):
    """The README's "Adding a figure kind" shows a whole kind file and its test: they must work
    exactly as printed (examples that are never run rot)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Adding a figure kind", 1)[1]
    kind_file, test_file = re.findall(r"^```python\n(.*?)^```$", section, re.M | re.S)[:2]
    for package in ("engine", "filters"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "tests").mkdir()
    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "tests" / "conftest.py")
    (tmp_path / "filters" / "kinds" / "temperature.py").write_text(kind_file)
    (tmp_path / "tests" / "test_kind_temperature.py").write_text(test_file)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_kind_temperature.py"],
                          cwd=tmp_path, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(tmp_path)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_a_run_blocks_key_covers_the_whole_engine():
    """A .run block may use any engine module: its key must change with each of them."""
    from filters.cache.sources import _IN_MEMORY

    engine_modules = {f"engine.{p.stem}" for p in (ROOT / "engine").glob("*.py") if p.stem != "__init__"}
    assert engine_modules <= set(_IN_MEMORY.closure(KINDS["run"].module)), "name it in filters/figures/sandbox.py's _engine()"
