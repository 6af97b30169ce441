"""LaTeX's run of a deck, as the lecturer hears of it: the engine a deck needs, LaTeX run
(:mod:`filters.latex`), and its log read back into slides: an error's slide, every frame that
overflows, every character no font had. ``preamble.tex`` (:data:`PREAMBLE`) goes into every
LaTeX deck."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from filters.errors import PREFIX
from filters.latex import log as texlog
from filters.latex.passes import ended_by, whole_pdf
from filters.latex.runner import LatexTimeout, Session, typeset
from filters.pipeline.errors import BuildError
from filters.util.pandoc import PandocTimeout

PREAMBLE = Path(__file__).resolve().parents[1] / "latex" / "preamble.tex"

# Beyond Latin, pdflatex sets these (pandoc's template, inputenc): anything else asks for LuaLaTeX.
_PDFLATEX_SETS = set("→×…–—“”‘’‚„‖€°·•†‡™«»¿¡§¶©®")


# pdflatex cannot build it, lualatex can: a character it has no font for, or a package of the
# Unicode engines (fontspec in the deck's header-includes).
_UNICODE_ERROR = re.compile(r"Unicode character .* not set up for use with LaTeX|"
                            r"fontspec package requires either XeTeX|cannot-use-pdftex")


# fontspec loaded by the deck (header-includes): pandoc's template loads it only for XeTeX and LuaTeX.
_FONTSPEC = re.compile(r"^\s*\\usepackage(?:\[[^\]]*\])?\{fontspec\}", re.M)


def needs_unicode_engine(tex: str) -> bool:
    """Whether ``tex`` has characters pdflatex cannot set (Chinese, emoji, Greek, ≤ …), or the deck
    loads ``fontspec``, which pdflatex cannot run."""
    return any(ord(c) > 0x24F and c not in _PDFLATEX_SETS for c in tex) or bool(_FONTSPEC.search(tex))


def to_pdf(tex: Path, *, deck: Path | None = None, overflow: str = "error", engine: str = "auto",
           session: Session | None = None, name: str | None = None) -> Path:
    """LaTeX ``tex`` (:func:`filters.latex.runner.typeset`), in the ``.tex``'s own folder (figure
    paths are relative to it), then read LaTeX's log back: a frame whose content does not fit (an
    overfull box of more than 2 pt) is named, by its slide's title, and stops the build unless
    ``overflow="warn"``.

    ``engine="auto"`` takes pdflatex, or lualatex when the text has characters pdflatex cannot set
    (and when pdflatex says so, once). Passes run only as the change needs them (none for an
    unchanged deck), from a precompiled preamble; a later build never trusts a run that did not
    finish. ``session``: a watch's :class:`filters.latex.runner.Session`. ``name``: how messages
    name the deck (by default ``deck``, else ``tex``: a deck of several files names them all).

    Raises:
        BuildError: with the slide of LaTeX's error and the end of its log when it fails; or naming
            every frame that overflows, and every character no font had (with its slides).
    """
    name = name or deck or tex
    chosen = engine == "auto"
    if chosen:
        engine = "lualatex" if needs_unicode_engine(tex.read_text()) else "pdflatex"
    if not shutil.which(engine):
        how = ("install Debian's texlive-xetex (sudo apt-get install texlive-xetex; `make setup` leaves it out, few "
               "decks need it), or build with --pdf-engine=lualatex") if engine == "xelatex" else "run `make setup`"
        raise BuildError(f"{name}: this deck is built with {engine}, which is not installed: {how}")
    log, done, text = _latex(tex, engine, deck=deck, session=session)
    if done.returncode != 0 and chosen and engine == "pdflatex" and _UNICODE_ERROR.search(log):
        print(f"{PREFIX} {name}: the deck needs a Unicode engine (characters pdflatex cannot set, or "
              "fontspec); building with lualatex", file=sys.stderr)
        engine = "lualatex"
        log, done, text = _latex(tex, engine, deck=deck, fresh=True, session=session)
    if done.returncode != 0:
        raise _failure(tex, name, engine, log or done.stdout, text, signal_number=ended_by(done))
    if whole_pdf(tex.with_suffix(".pdf")) is None:
        raise _failure(tex, name, engine, log or done.stdout, text, missing=True)
    _check_overflows(log, text, name, overflow)
    _check_glyphs(log, text, name, engine)
    return tex.with_suffix(".pdf")


def _latex(tex: Path, engine: str, *, deck: Path | None, fresh: bool = False, session: Session | None = None):
    try:
        return typeset(tex, engine, deck=deck, fresh=fresh, session=session)
    except LatexTimeout as exc:
        raise BuildError(f"{deck or tex}: {exc}") from None


def _failure(tex: Path, name, engine: str, log: str, text: str, *, signal_number: int | None = None,
             missing: bool = False) -> BuildError:
    """The error of a LaTeX run that failed: its slide (or that the engine is missing, that LaTeX
    was stopped by a signal, that it wrote no whole PDF), and the end of its log."""
    tail = log.splitlines()[-25:]
    where = ""
    if engine != "pdflatex" and not shutil.which(engine):
        package = {"lualatex": "texlive-luatex", "xelatex": "texlive-xetex"}.get(engine, engine)
        where = (f"{name}: this deck needs {engine}, which is not installed: run `make setup`, or install "
                 f"Debian's {package}\n")
    for error in texlog.errors(log, text, tex.name)[:1]:
        plain = texlog.explained(error.message)
        where = f"{name}, {_place(error)}: {plain if plain != error.message else 'LaTeX: ' + plain}\n"
    if not where and signal_number is not None:
        where = (f"{name}: LaTeX was stopped by signal {signal_number} (killed from outside, or out of memory?); "
                 "build again\n")
    if not where and missing:
        where = f"{name}: LaTeX ended without an error but wrote no whole PDF ({tex.with_suffix('.pdf')})\n"
    return BuildError(f"{where}LaTeX ({engine}) failed on {tex}; the end of its log:\n" + "\n".join(tail))


def _place(error: texlog.Error) -> str:
    """Where an error of LaTeX's is, as the lecturer knows the deck: its slide, else the preamble."""
    if error.frame is not None:
        return f"slide «{plain_title(error.frame.title)}»"
    if error.preamble:
        return "its preamble (before the first slide: header-includes, a package, the theme)"
    return "outside any slide"


def _check_overflows(log: str, text: str, name, overflow: str) -> None:
    """Every frame whose content does not fit: an error, or (``overflow="warn"``) a warning each,
    once per frame however many of its overlays overflow (:func:`filters.latex.log.per_frame`)."""
    problems = [f"{name}, slide «{plain_title(o.frame.title) if o.frame else '?'}»: "
                f"{'its content is' if o.box == 'v' else 'a line is'} {o.points:.1f} pt too "
                f"{'tall for the frame' if o.box == 'v' else 'wide for the text'}"
                + (f" (on {pages} overlays)" if pages > 1 else "")
                for o, pages in texlog.per_frame(texlog.overflows(log, text))]
    if problems and overflow == "warn":
        for problem in problems:
            print(f"{PREFIX} warning: {problem}", file=sys.stderr)
    elif problems:
        raise BuildError("\n".join(f"{PREFIX} {p}" for p in problems) + f"\n{PREFIX} the PDF was written, but "
                         "something is off its slide: make a figure smaller (height=…), shorten its caption or the "
                         "text, or split the frame; metadata 'attnslides: {overflow: warn}' only warns", listed=True)


def _check_glyphs(log: str, text: str, name, engine: str) -> None:
    """Characters no font had: never only a warning, the text is gone."""
    by_slides: dict[str, list[str]] = {}
    for char, frames in texlog.missing_characters(log, text):
        slides = ", ".join(f"«{plain_title(f.title)}»" for f in frames) or "(outside any frame)"
        by_slides.setdefault(slides, []).append(f"«{char}» (U+{ord(char):04X})")
    if by_slides:
        raise BuildError("\n".join(f"{PREFIX} {name}, slide {slides}: {', '.join(chars)} missing from the PDF: no font "
                                    f"{engine} used has a glyph for {'it' if len(chars) == 1 else 'them'}"
                                    for slides, chars in by_slides.items())
                         + f"\n{PREFIX} the PDF was written, but without those characters: write the text without them, or "
                         "add a font that has them to filters/latex/preamble.tex", listed=True)


def plain_title(latex_title: str) -> str:
    """A frame title as plain text (``Atenci\\'on \\(\\sqrt{d_k}\\)`` → ``Atención √d_k``), read by pandoc
    and shown as the filter shows titles (:func:`filters.pandoc.document.plain_text`)."""
    if not latex_title.strip():
        return "(a frame without a title)"
    if not re.search(r"[\\{}$]", latex_title):
        return latex_title.strip()
    from filters.pandoc.document import plain_text  # math as text (√d_k), as in the filter's own messages
    from filters.pandoc.output import read_blocks

    try:
        blocks = read_blocks(latex_title, "latex")
    except (PandocTimeout, OSError, ValueError):  # a title it cannot read in time is shown as written
        return latex_title.strip()
    return " ".join(plain_text(b) for b in blocks).strip() or latex_title.strip()
