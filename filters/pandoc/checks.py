"""Checks the filter makes on a whole document: the pandoc that runs it, the device and language
asked for, the files the deck names (pictures, metadata) inside its project, code blocks that would
show as plain code, code lines that run off a Beamer frame."""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path

import panflute as pf

from filters.blocks.labels import LANGUAGES, language
from filters.blocks.page import Page, page_for
from filters.cache.store import Cache
from filters.errors import PREFIX, BlockError, BlockErrors, Where
from filters.kinds import KINDS
from filters.pandoc.document import slide_level, slides_of
from filters.pandoc.settings import DeckSettings
from filters.util.confine import OutsideProject, check_metadata, deck_project
from filters.util.files import WritesOutside, check_folder, project_root, write_atomic
from filters.util.pandoc import TEXT_TIME_LIMIT_S, PandocTimeout, pandoc_path, pandoc_version, run_pandoc


def check_pandoc(version: str) -> None:
    """Stop before any figure is computed when the pandoc running the filter (its ``version``, which
    pandoc gives its filters in ``PANDOC_VERSION``) is older than 3: it cannot read the Figures we write."""
    major = version.split(".")[0]
    if major.isdigit() and int(major) < 3:
        raise BlockError(f"this is pandoc {version}, and attnslides needs pandoc 3 or later (it writes Figure "
                         f"elements, which pandoc {version} cannot read). Use the pandoc installed with attnslides: "
                         f"{pandoc_path()}, or `attnslides build`")


def device(settings: DeckSettings) -> str:
    """The device the engine runs on, checked now, before any figure: named with where it was set."""
    from engine.device import resolve

    device, where, deck = settings.device, settings.device_given_by, settings.deck
    if device == "cpu":
        return device
    try:
        resolved = resolve(device)
        if resolved != "cpu":
            from engine.device import pick

            pick(resolved)
    except (RuntimeError, ValueError) as exc:
        reason = str(exc).split(", but ", 1)[-1]  # the engine's "cuda was asked for, but …": said here with where
        raise BlockError(f"the device '{device}' was asked for {where}, but {reason}; build on the cpu "
                         "(attnslides build --device cpu) or on a machine that has it",
                         where=Where(deck, "(metadata)", "the build's device")) from None
    return device


def deck_language(doc: pf.Doc, deck: str) -> str:
    """The language of the figures' words: the deck's ``lang`` (``es-ES`` → ``es``; English when it
    gives none).

    Raises:
        BlockError: for a language we have no words for, when the deck has live blocks.
    """
    given = doc.get_metadata("lang", None)
    code = language(str(given)) if isinstance(given, str) and given.strip() else "en"
    if isinstance(given, str) and given.strip() and given.split("-")[0].lower() not in LANGUAGES:
        raise BlockError(f"the deck's lang is {given!r}, and figures can have words in {', '.join(LANGUAGES)} only: "
                         f"add 'attnslides: {{lang: en}}' (or es) to the metadata to choose one",
                         key="lang", where=Where(deck, "(metadata)", "in the deck's metadata"))
    return code


# Formats whose writer reads each picture and puts it inside the output (fetching a URL, too).
_EMBEDDING = ("docx", "pptx")


def check_files(doc: pf.Doc, settings: DeckSettings) -> None:
    """When the build confines the deck's files (``settings.build.project``): every file its
    metadata names (``bibliography``, ``csl`` …), and every picture the deck shows
    (:func:`check_pictures`), lies inside the project, before anything is computed. The pandoc
    that read the deck did not yet write anything: a refused file reaches no output.

    Raises:
        BlockError: for the metadata's file, or each picture outside (its slide and path).
    """
    project, deck = settings.build.project, settings.deck
    if project is None:
        return
    try:
        check_metadata(doc.get_metadata(), project)
    except OutsideProject as exc:
        raise BlockError(str(exc), where=Where(deck, "(metadata)", "in the deck's metadata")) from None
    check_pictures(doc, settings)


def check_pictures(doc: pf.Doc, settings: DeckSettings, *, produced: frozenset[int] = frozenset()) -> None:
    """When the build confines the deck's files: every picture in ``doc`` lies inside the project;
    in Word and PowerPoint, which fetch a picture's URL, a picture is no URL either. Called on the
    deck as read (early errors, before anything is computed) and on the document the filter hands
    back to pandoc (:func:`filters.pandoc.filter.finalize`): a picture in a live block's caption or
    in a ``.run`` block's ``slide.text`` (a cached one, too, which ``--no-exec`` shows) is there
    only then. pandoc reads a file for an Image alone: raw HTML's ``<img>`` is dropped by the
    Office writers and linked, never embedded, by reveal.js.

    ``produced``: ``id()`` of the pictures the filter placed itself (its figures), not checked.

    Raises:
        BlockError: for each picture outside (its slide and path).
    """
    project, deck = settings.build.project, settings.deck
    if project is None:
        return
    errors = []

    def look(elem, _doc, title):
        if isinstance(elem, pf.Image) and id(elem) not in produced:
            try:
                project.check(elem.url, "a picture", urls=settings.fmt not in _EMBEDDING, source="the slide")
            except OutsideProject as exc:
                errors.append(BlockError(str(exc), where=Where(deck, title, f"the picture {elem.url}")))

    doc.metadata.walk(lambda elem, d: look(elem, d, "(metadata)"))
    for block, title in slides_of(doc, slide_level(doc, deck)):
        block.walk(lambda elem, d, title=title: look(elem, d, title))
    if errors:
        raise errors[0] if len(errors) == 1 else BlockErrors(errors, deck)


def check_folders(settings: DeckSettings, figures: Path | None = None) -> None:
    """The deck's ``figures-dir`` and ``cache-dir`` lie in its project once symbolic links are
    followed (:func:`filters.util.files.check_folder`): a link its repository ships
    (``build/figs -> /elsewhere``) would have the build write there. A figures folder the build
    chose (a reveal.js deck's, under the output folder) was checked by the build. ``figures``: the
    deck's own folder in it (``build/figures/<deck>``), checked too once it is known.

    Raises:
        BlockError: naming the key, the folder and the link.
    """
    deck = settings.build.deck
    project = deck_project(Path(deck)) if deck is not None and Path(deck).is_file() else project_root()
    folders = [("cache-dir", Path(settings.meta.cache_dir))]
    # the lecturer's --out, and the folder the build chose for a reveal.js deck's figures (checked by it)
    within = (settings.build.out_given, settings.build.output_dir if settings.build.figures_dir else None)
    folders += [] if settings.build.figures_dir else [("figures-dir", Path(settings.meta.figures_dir))]
    folders += [("figures-dir", figures)] if figures is not None else []
    for key, folder in folders:
        try:
            check_folder(folder, project, f"the deck's {key}", within=within)
        except WritesOutside as exc:
            raise BlockError(str(exc), key=key, where=Where(settings.deck, "(metadata)", "in the deck's metadata")) \
                from None


# Classes a code block may carry that are no language: pandoc's own, and plain-text listings.
_CODE_CLASSES = frozenset({"numberlines", "number-lines", "text", "plain", "output", "sourcecode", "example", "txt"})


def warn_unknown_classes(others: list[tuple[str, str]], deck: str, cache: Cache) -> None:
    """Warn about a code block whose class is neither a kind nor a language pandoc highlights
    (``.multihed``, ``.heatmap``): it would show as a plain code listing, which is seldom meant."""
    known = None
    for name, slide in dict.fromkeys(others):
        if name.lower() in _CODE_CLASSES:
            continue
        known = known if known is not None else highlight_languages(cache)
        if name.lower() in known:
            continue
        close = difflib.get_close_matches(name, KINDS, n=1, cutoff=0.0)
        hint = f"the closest kind is '.{close[0]}'" if close else ""
        print(f"{PREFIX} warning: {deck}, slide «{slide}»: a code block of class '.{name}' is neither a live block "
              f"nor a language pandoc highlights, so it shows as plain code; {hint}", file=sys.stderr)


def highlight_languages(cache: Cache) -> frozenset[str]:
    """The languages pandoc highlights (``pandoc --list-highlight-languages``), asked once per pandoc
    version and kept in the cache folder when there is one."""

    record = cache.root / f".highlight-languages-{pandoc_version()}.json"
    try:
        return frozenset(json.loads(record.read_text()))
    except (OSError, ValueError):
        pass
    try:
        names = frozenset(run_pandoc(["--list-highlight-languages"], limit=TEXT_TIME_LIMIT_S).stdout.split())
    except PandocTimeout:
        names = frozenset()
    if names and cache.root.is_dir():
        write_atomic(record, json.dumps(sorted(names)).encode())
    return names


# The width of one character of Beamer's monospaced font (Latin Modern Mono, 0.525 em) at each of
# LaTeX's sizes in an 11 pt deck, in PDF points: measured on a built deck (pdftotext -bbox of a long
# line, its width over its characters). The deck's ``code-size`` chooses one.
_CHAR_BP = {"tiny": 3.1753, "scriptsize": 4.2333, "footnotesize": 4.7074, "small": 5.2303, "normalsize": 5.7273}


def code_columns(size: str = "normalsize", page: Page | None = None) -> int:
    """Characters a line of code holds on a Beamer frame at the LaTeX font ``size`` (one of
    :data:`filters.blocks.settings.CODE_SIZES`) in the text width of ``page`` (the deck's theme and
    aspect ratio; default: the default theme on 4:3): 53 at ``normalsize`` there, 72 at
    ``scriptsize``; 69 and 93 on 16:9; 59 at ``normalsize`` in Madrid, 50 in Berkeley (a sidebar).
    Highlighted code (fancyvrb) runs off the slide with no word in LaTeX's log, so the filter counts."""
    text_bp = (page or page_for(None, "43")).text_width * 72 / 72.27
    return int(text_bp / _CHAR_BP[size])


CODE_COLUMNS = code_columns()  # 53: a 4:3 deck's code at its body size


def check_code_width(doc: pf.Doc, settings: DeckSettings) -> None:
    """In Beamer, a line of code (the deck's, a ``.run`` block's listing or printed output) longer
    than :func:`code_columns` at the deck's ``code-size`` stops the build naming its slide, the line
    (its number in the code block and its start) and a ``code-size`` at which it would fit
    (``overflow: warn`` only warns)."""
    if doc.format != "beamer":
        return
    size, page = settings.meta.code_size, settings.page
    columns, found = code_columns(size, page), []

    def look(elem, _doc, title):
        if isinstance(elem, pf.CodeBlock):
            lines = [line.expandtabs(4) for line in elem.text.splitlines()]
            long = [(n, line) for n, line in enumerate(lines, start=1) if len(line) > columns]
            if long:
                found.append((title, elem, long))

    for block, title in slides_of(doc, slide_level(doc, settings.deck)):
        block.walk(lambda elem, d, title=title: look(elem, d, title))
    if not found:
        return
    overflow, deck = settings.meta.overflow, settings.deck
    errors = [BlockError(_too_long(long, columns, size, page), where=Where(deck, title, _code_block(elem)))
              for title, elem, long in found]
    if overflow == "warn":
        for error in errors:
            print(f"{PREFIX} warning: {str(error).removeprefix(PREFIX + ' ')}", file=sys.stderr)
        return
    raise errors[0] if len(errors) == 1 else BlockErrors(errors, deck)


def _code_block(elem: pf.CodeBlock) -> str:
    """How a message names a code block: by its class (``.python``; ``.output``: a ``.run`` block's printing)."""
    return f".{elem.classes[0]} (a code block)" if elem.classes else "(a code block)"


def _too_long(long: list[tuple[int, str]], columns: int, size: str, page: Page) -> str:
    """What is wrong with the ``long`` lines (number in the block, text) of one code block, and the
    fix: the largest ``code-size`` at which the longest fits, else breaking it."""
    number, line = long[0]
    start = line.strip()[:30] + ("…" if len(line.strip()) > 30 else "")
    more = f" (and {len(long) - 1} more line{'s' if len(long) > 2 else ''} too long)" if len(long) > 1 else ""
    longest = max(len(text) for _, text in long)
    fits = [name for name in _CHAR_BP if code_columns(name, page) >= longest]
    fix = (f"break it, or set the deck's code smaller: metadata 'attnslides: {{code-size: {fits[-1]}}}' holds "
           f"{code_columns(fits[-1], page)}" if fits else "break it, or print less per line")
    return (f"line {number} of the code block, «{start}», runs off the slide: a line of {len(line)} characters{more}, "
            f"and at most {columns} fit at code-size {size}: {fix}")
