"""The filter's settings, as values: what a build tells it, and what it reads from the deck once.

``attnslides build`` hands the filter a :class:`BuildSettings` (the deck, its text, the folders, the
device and whether to run the deck's code); ``pandoc -F attnslides-filter`` cannot, so
:meth:`BuildSettings.from_environment` reads the same from the environment, at that one entry point
(:func:`filters.pandoc.filter.main`). :func:`deck_settings` then reads the deck's metadata once into a
:class:`DeckSettings`, which the filter keeps on the document and the build reads back (the LaTeX
engine, the overflow rule, the theme): nothing parses the metadata a second time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filters.blocks.page import DEFAULT_PAGE, Page
from filters.blocks.settings import Settings
from filters.util.confine import Project

# Pandoc's output formats by family: the figures of a family are the same files (a handout's are the
# slides', Word's PowerPoint's), drawn as PDF, SVG or PNG.
LATEX_FORMATS = ("latex", "beamer")
HTML_FORMATS = ("html", "html4", "html5", "revealjs", "slidy", "slideous", "dzslides", "s5", "epub", "epub2", "epub3")
# Formats that show slides one at a time: elsewhere (a handout, a Word file) pauses and speaker
# notes are dropped, and worked examples show every step at once.
SLIDE_FORMATS = ("beamer", "revealjs", "slidy", "slideous", "dzslides", "s5", "pptx")


def family(fmt: str) -> str:
    """``"latex"``, ``"html"`` or ``"office"``: the family of pandoc's output format ``fmt``."""
    return "latex" if fmt in LATEX_FORMATS else "html" if fmt in HTML_FORMATS else "office"


FIGURE_TYPES = {"latex": "pdf", "html": "svg", "office": "png"}  # the picture file type of each family


@dataclass(frozen=True)
class BuildSettings:
    """What the build tells the filter about this run.

    Attributes:
        deck: the deck's file (names messages and its figures' folder); ``None`` under ``pandoc -F``,
            where the filter sees only the document.
        deck_text: the deck's text, read once by the build (the line of each block, for messages).
        output_dir: the folder of the output document: figure paths are written relative to it.
        figures_dir: overrides the deck's ``figures-dir`` (a reveal.js deck keeps its figures in its
            own folder).
        device: overrides the deck's ``device`` (``--device``, make's ``DEVICE=``).
        execute: ``False``: never run the deck's code (``--no-exec``).
        pandoc_version: of the pandoc that read the deck (part of every cache key).
        project: the deck's project, when the build confines the files the deck names to it
            (:mod:`filters.util.confine`): its pictures and metadata files are checked; ``None``
            (``pandoc -F``, ``--allow-outside-files``): they are not.
        cores: the cores this build may keep busy (``--jobs``: a deck's share in a multi-deck
            build); 0: every core. Its figure workers never outnumber them.
        out_given: the output folder the lecturer named (``--out``), which the build may write
            into even when a link leads it out of the project; ``None``: the default one.
        keep_going: ``--keep-going``: a block that fails stops no other; each is computed (and
            cached) before the build stops with the failures.
        name: the name of the deck's outputs and figures folder when it is not its file's
            (``-o``'s: a deck of several files); ``None``: its file's.
        parts: a deck of several files (``attnslides build a.md b.md -o deck.pdf``): each file as
            messages name it, with the line of ``deck_text`` (all of them, read as one) it starts
            at; ``deck`` is the first. ``()``: a deck of one file.
    """

    deck: Path | None = None
    deck_text: str | None = None
    output_dir: Path = Path(".")
    figures_dir: Path | None = None
    device: str | None = None
    execute: bool = True
    pandoc_version: str = ""
    project: Project | None = None
    cores: int = 0
    out_given: Path | None = None
    keep_going: bool = False
    name: str | None = None
    parts: tuple[tuple[str, int], ...] = ()

    def place(self, line: int) -> tuple[str | None, int]:
        """The file (``None``: the deck's own) and the line in it of ``line`` of ``deck_text``."""
        for file, start in reversed(self.parts):
            if line >= start:
                return file, line - start + 1
        return None, line

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> BuildSettings:
        """The settings of a filter that pandoc started (``pandoc -F attnslides-filter``): pandoc's
        own ``PANDOC_VERSION`` (else the version of the pandoc attnslides ships), and, for a
        lecturer who drives the filter by hand, ``ATTNSLIDES_DECK``, ``ATTNSLIDES_OUTPUT_DIR``,
        ``ATTNSLIDES_FIGURES_DIR``, ``ATTNSLIDES_DEVICE``, ``ATTNSLIDES_EXECUTE=0`` and
        ``ATTNSLIDES_KEEP_GOING=1`` (the deck's
        text is read from its file). The only place the filter reads its environment."""
        env = os.environ if environ is None else environ
        version = env.get("PANDOC_VERSION")
        if not version:
            from filters.util.pandoc import pandoc_version

            version = pandoc_version()
        deck = Path(env["ATTNSLIDES_DECK"]) if env.get("ATTNSLIDES_DECK") else None
        try:
            text = deck.read_text(encoding="utf-8") if deck else None
        except (OSError, ValueError):
            text = None
        return cls(deck=deck, deck_text=text, output_dir=Path(env.get("ATTNSLIDES_OUTPUT_DIR") or "."),
                   figures_dir=Path(env["ATTNSLIDES_FIGURES_DIR"]) if env.get("ATTNSLIDES_FIGURES_DIR") else None,
                   device=env.get("ATTNSLIDES_DEVICE") or None, execute=env.get("ATTNSLIDES_EXECUTE", "1") != "0",
                   pandoc_version=version, keep_going=env.get("ATTNSLIDES_KEEP_GOING", "0") not in ("", "0"))


@dataclass(frozen=True)
class DeckSettings:
    """Everything the filter and the build know of one deck, read once (:func:`deck_settings`).

    Attributes:
        build: what the build said (:class:`BuildSettings`).
        deck: how messages name the deck: its file, else its title.
        fmt: pandoc's output format; ``family`` and ``ext`` follow from it.
        meta: the ``attnslides:`` metadata's settings (defaults where it is broken: the error is
            reported with the blocks').
        kind_defaults: per kind, the raw option defaults the metadata gives.
        theme: the deck's ``theme`` (a Beamer theme, or a reveal.js one), ``None`` when it has none.
        pdf_engine: the LaTeX engine the deck asks for (``auto`` when it does not say).
        page: the text area of its frames (its theme and ``aspectratio``), which figures are drawn for.
        errors: what is wrong with the metadata (:class:`filters.errors.BlockError`).
    """

    build: BuildSettings
    deck: str
    fmt: str
    meta: Settings = field(default_factory=Settings)
    kind_defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    theme: str | None = None
    pdf_engine: str = "auto"
    page: Page = DEFAULT_PAGE
    errors: tuple = ()

    @property
    def family(self) -> str:
        return family(self.fmt)

    @property
    def ext(self) -> str:
        return FIGURE_TYPES[self.family]

    @property
    def device(self) -> str:
        """The device asked for: by the build (``--device``), else by the deck."""
        return self.build.device or self.meta.device

    @property
    def device_given_by(self) -> str:
        return "by --device (or make's DEVICE=)" if self.build.device else \
            "in the deck's metadata 'attnslides: {device: …}'"

    @property
    def execute(self) -> bool:
        """Run the deck's code: unless the build or the deck says not to."""
        return self.meta.execute and self.build.execute

    @property
    def figures_root(self) -> Path:
        return self.build.figures_dir or Path(self.meta.figures_dir)
