"""``attnslides watch``'s filter of changed files: what starts a build, and what the build or the
watch itself writes and must never start one (a watch whose log is in the deck's folder rebuilt for
ever). The watch's rebuilds themselves are tested with LaTeX in test_latex_rebuild.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from watchfiles import Change

from filters.cli.watch import Wanted


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A lecturer's folder: a deck, a picture, a data file; the watch runs from it."""
    monkeypatch.chdir(tmp_path)
    for name in ("clase.md", "gato.png", "datos.csv", "notas.tex"):
        (tmp_path / name).write_text("x")
    return tmp_path


def test_a_deck_and_the_files_beside_it_start_a_build(project):
    wanted = Wanted([Path("clase.md")], Path("build"), Path("build"), own=set())
    for name in ("clase.md", "gato.png", "datos.csv", "notas.tex", "otra.md"):
        assert wanted(Change.modified, str(project / name)), name


@pytest.mark.parametrize("name", ["watch.log", "build/clase.pdf", "build/cache/ab/entry.json", "salida/clase.tex",
                                  "build/figures/clase/a.pdf", ".clase.md.swp", "clase.md~", ".git/index",
                                  "clase.aux", "datos.csv.tmp", "x.partial", "__pycache__/helper.cpython-312.pyc"])
def test_what_the_build_latex_or_an_editor_writes_starts_no_build(project, name):
    wanted = Wanted([Path("clase.md")], Path("salida"), Path("build"), own=set())
    assert not wanted(Change.modified, str(project / name))


def test_the_watchs_own_log_starts_no_build_whatever_its_name(project):
    """Regression: ``attnslides watch clase.md 2> registro.txt`` in the deck's folder rebuilt for ever:
    each build's lines changed the log, which started the next build."""
    log = project / "registro.txt"
    with open(log, "w") as file:
        saved = os.dup(2)
        os.dup2(file.fileno(), 2)
        try:
            wanted = Wanted([Path("clase.md")], Path("build"), Path("build"))
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    assert not wanted(Change.modified, str(log))
    assert wanted(Change.modified, str(project / "datos.csv"))


def test_a_deck_inside_an_ignored_folder_is_still_watched(project):
    (project / "build").mkdir()
    (project / "build" / "borrador.md").write_text("x")
    wanted = Wanted([Path("build/borrador.md")], Path("build"), Path("build"), own=set())
    assert wanted(Change.modified, str(project / "build" / "borrador.md"))
