"""Shared fixtures: documents built in Python (or read from the small decks in tests/decks/),
isolated build folders. panflute is imported where it is used: the engine's tests, which
``make gpu-check`` runs on GPU machines, need only torch, numpy and pytest."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent  # the repository
DECKS = Path(__file__).resolve().parent / "decks"  # one small deck per behaviour
# The project's own lectures: the tests check these, not whatever deck a lecturer adds to slides/
# (a deck of theirs that times something would otherwise fail the project's tests).
LECTURES = (ROOT / "slides" / "transformers-1.md", ROOT / "slides" / "transformers-2.md")

# The one test of whether LaTeX can run here (pdflatex for the decks, latexmk for plain pandoc's
# reference build, poppler's pdftotext to read the PDF back); `make setup` installs them.
needs_latex = pytest.mark.skipif(not all(shutil.which(t) for t in ("pdflatex", "latexmk", "pdftotext")),
                                 reason="needs pdflatex, latexmk and pdftotext: run `make setup`")
needs_lualatex = pytest.mark.skipif(not shutil.which("lualatex"), reason="needs lualatex: run `make setup`")


def skip_without_model() -> None:
    """Skip, naming the command that installs it, when the pretrained model the lectures run
    (all-MiniLM-L6-v2) is not installed: without it, a lecture stops (as it should)."""
    from filters.kinds._pretrained import missing

    if missing():
        pytest.skip(f"the lectures run the pretrained model: {missing()}")


@pytest.fixture
def build_dirs(tmp_path, monkeypatch):
    """Figures and cache folders of one test, as ``attnslides:`` metadata: inside the test's own
    folder, which becomes the current one (the build writes only inside the project)."""
    monkeypatch.chdir(tmp_path)
    return {"figures-dir": "build/figures", "cache-dir": "build/cache", "jobs": 1}


class FiguresFolder:
    """The figures folder of a deck run through the filter with no deck file known (as under
    ``pandoc -F``), whose file names end with their cache key: ``folder / "a.json"`` is the one file
    ``a-<key>.json`` (or ``a.json``)."""

    def __init__(self, path: Path):
        self.path = path

    def __truediv__(self, name: str) -> Path:
        stem, _, ext = name.rpartition(".")
        pattern = re.compile(rf"{re.escape(stem)}(-[0-9a-f]{{8}})?\.{re.escape(ext)}")
        found = [p for p in self.path.glob(f"{stem}*.{ext}") if pattern.fullmatch(p.name)]
        assert len(found) <= 1, f"two files for {name}: {found}"
        return found[0] if found else self.path / name

    def iterdir(self):
        return self.path.iterdir()

    def exists(self) -> bool:
        return self.path.exists()


@pytest.fixture
def figures(build_dirs):
    """Where the filter puts the figures of :func:`make_doc`'s deck ("Deck de prueba")."""
    return FiguresFolder(Path(build_dirs["figures-dir"]) / "deck-de-prueba")


@pytest.fixture(autouse=True)
def _pandoc_version(monkeypatch):
    """Filter tests run without pandoc; tell the cache which pandoc would have run the filter."""
    monkeypatch.setenv("PANDOC_VERSION", os.environ.get("PANDOC_VERSION", "3.9"))


def make_doc(*blocks, meta=None, fmt="beamer", lang="es", title="Deck de prueba"):
    """A Pandoc document as the Markdown reader would give it, built without pandoc."""
    import panflute as pf

    metadata = {"title": title, "lang": lang}
    if meta is not None:
        metadata["attnslides"] = meta
    return pf.Doc(*blocks, metadata=metadata, format=fmt)


def slide(title, *content):
    """A level-1 header (a Beamer frame title) followed by ``content``."""
    import panflute as pf

    return [pf.Header(pf.Str(title), level=1), *content]


def live(kind, text="", ident="", **attributes):
    """A live code block ``{.kind #ident key=value}``."""
    import panflute as pf

    return pf.CodeBlock(text, identifier=ident, classes=[kind], attributes={k: str(v) for k, v in attributes.items()})


def filter_deck(deck: Path, build_dirs: dict, monkeypatch, *, fmt: str = "beamer", **metadata):
    """Read ``deck`` with pandoc and run the filter on it in this process, as ``attnslides build``
    would (the deck's path known, for line numbers); ``metadata`` is added under ``attnslides:``.

    Returns:
        The filtered document.
    """
    import panflute as pf
    import pypandoc

    from filters.pandoc.filter import main

    monkeypatch.setenv("ATTNSLIDES_DECK", str(deck))
    doc = pf.convert_text(deck.read_text(), standalone=True, pandoc_path=pypandoc.get_pandoc_path())
    doc.format = fmt
    given = doc.get_metadata("attnslides", {}) or {}
    doc.metadata["attnslides"] = {**given, **build_dirs, **metadata}
    return main(doc)


def figures_of(deck: Path, build_dirs: dict) -> Path:
    """Where the filter puts the figures of ``deck``."""
    return Path(build_dirs["figures-dir"]) / deck.stem


def frames(markdown: str) -> list[tuple[str, str]]:
    """``(title, body)`` of each frame, code blocks kept whole (their '#' lines are comments)."""
    found, title, body, fence = [], None, [], None
    for line in markdown.split("\n---\n", 1)[1].splitlines():
        if fence is None and line.startswith("# "):
            if title is not None:
                found.append((title, "\n".join(body)))
            title, body = line[2:].strip(), []
            continue
        if line.startswith("```"):
            fence = None if fence else line
        body.append(line)
    return found + [(title, "\n".join(body))]


def processes_with_argument(argument: str) -> list[int]:
    """The processes (pids) whose command line holds ``argument`` as one of its words (Linux's /proc):
    how the tests find a daemon they started, by a unique argument (``sleep 9123.456789``)."""
    import os

    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                if argument.encode() in file.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            pass
    return found


# The fonts figures are drawn in (filters/figures/attnslides.mplstyle and its fallbacks), as the PDF
# names them: body text is Latin Modern, so a glyph in one of these is a figure's.
FIGURE_FONTS = ("DejaVu", "NotoSansCJK", "Symbola")


def figure_glyphs(pdf: Path) -> list[tuple[int, str, float]]:
    """Every upright glyph of the figures in ``pdf``, as pdfplumber reads the page (figures are
    placed as Form XObjects, their text kept): ``(page from 1, character, size in points on the
    page)``."""
    import pdfplumber

    glyphs = []
    with pdfplumber.open(pdf) as document:
        for number, page in enumerate(document.pages, start=1):
            glyphs += [(number, c["text"], float(c["size"])) for c in page.chars
                       if c.get("upright", True) and c["text"].strip()
                       and any(font in c["fontname"] for font in FIGURE_FONTS)]
    return glyphs
