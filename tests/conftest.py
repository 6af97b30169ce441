"""Shared fixtures: documents built in Python, isolated build folders, and the devices to test on."""

from __future__ import annotations

import os
from pathlib import Path

import panflute as pf
import pytest

ROOT = Path(__file__).resolve().parent.parent  # the repository


@pytest.fixture
def build_dirs(tmp_path):
    """Figures and cache folders of one test, as ``attnslides:`` metadata."""
    return {"figures-dir": str(tmp_path / "figures"), "cache-dir": str(tmp_path / "cache"), "jobs": 1}


@pytest.fixture
def figures(build_dirs):
    """Where the filter puts the figures of :func:`make_doc`'s deck ("Deck de prueba")."""
    return Path(build_dirs["figures-dir"]) / "deck-de-prueba"


@pytest.fixture(autouse=True)
def _pandoc_version(monkeypatch):
    """Filter tests run without pandoc; tell the cache which pandoc would have run the filter."""
    monkeypatch.setenv("PANDOC_VERSION", os.environ.get("PANDOC_VERSION", "3.9"))


def make_doc(*blocks, meta=None, fmt="beamer", lang="es", title="Deck de prueba"):
    """A Pandoc document as the Markdown reader would give it, built without pandoc."""
    metadata = {"title": title, "lang": lang}
    if meta is not None:
        metadata["attnslides"] = meta
    return pf.Doc(*blocks, metadata=metadata, format=fmt)


def slide(title, *content):
    """A level-1 header (a Beamer frame title) followed by ``content``."""
    return [pf.Header(pf.Str(title), level=1), *content]


def live(kind, text="", ident="", **attributes):
    """A live code block ``{.kind #ident key=value}``."""
    return pf.CodeBlock(text, identifier=ident, classes=[kind], attributes={k: str(v) for k, v in attributes.items()})
