"""The registry: every kind is complete, its data is what its TypedDict says, and nothing outside a
kind's file names it."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import typing

import pytest
from conftest import ROOT

from filters.kind import Kind
from filters.kinds import KINDS
from filters.labels import LANGUAGES
from filters.render import render


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_is_complete(name):
    kind = KINDS[name]
    assert kind.problems() == []
    assert kind.summary, "shown by `attnslides options`"
    if kind.output == "figure":
        for lang in LANGUAGES:
            assert kind.default_caption(kind.options(), lang)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_data_is_what_the_kinds_typeddict_declares(name, tmp_path):
    """compute's return annotation is the kind's TypedDict, which the README's Data lines describe;
    the data must have exactly its keys, survive JSON, and draw (or write) in every language."""
    kind = KINDS[name]
    declared = typing.get_type_hints(kind.compute)["return"]
    data = kind.compute(kind.options(), "cpu")
    assert set(data) == set(typing.get_type_hints(declared)), f"{declared.__name__} and the data disagree"
    assert json.loads(json.dumps(data)) == data
    for lang in LANGUAGES:
        if kind.output == "figure":
            render(kind, data, kind.options(), tmp_path / f"{lang}.png", lang=lang)
        else:
            for fmt in ("beamer", "revealjs"):
                assert kind.write(data, kind.options(), fmt=fmt, identifier="x") is not None


def test_an_incomplete_kind_is_named_when_the_registry_loads(tmp_path):
    for package in ("engine", "filters"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "filters" / "kinds" / "incomplete.py").write_text(
        "from dataclasses import dataclass\n"
        "from filters.kind import Kind\n"
        "from filters.options import FigureOptions\n\n"
        "@dataclass(frozen=True)\n"
        "class IncompleteOptions(FigureOptions):\n"
        "    '''``.incomplete``: a kind that forgot its English caption.'''\n\n"
        "KIND = Kind(name='incomplete', options=IncompleteOptions, compute=lambda o, d: {}, output='figure',\n"
        "            draw=lambda d, o, l: None, cost=1, captions={'es': 'Una figura.'})\n")
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
    ]
    text = Kind("attention", attention.options, attention.compute, "text", -1, captions=attention.captions,
                labels={"es": {"a": "a", "query": "q"}, "en": {"query": "q"}})
    assert text.problems() == [
        "cost must be a number >= 0, not -1",
        "a text kind needs write(data, options, *, fmt, identifier) -> panflute.Block",
        "a text kind shows no caption, so it must not declare captions",
        "labels in 'en' lack a",
        "labels query are shared ones (filters.labels); use those",
    ]
    bad_caption = Kind("attention", attention.options, attention.compute, "figure", 1, draw=attention.draw,
                       captions={"es": "Pesos de «{frase}»", "en": "Weights of {sentence}"})
    assert bad_caption.problems() == ["the caption in 'es' cannot be filled from the options: KeyError: 'frase'"]


def test_nothing_outside_a_kinds_file_names_it():
    """A kind is its file: the shared stages must not branch on a kind's name (STYLE.md)."""
    names = set(KINDS) | {f".{name}" for name in KINDS}
    for path in sorted((ROOT / "filters").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names:
                pytest.fail(f"{path.name}:{node.lineno} names the kind {node.value!r}")
