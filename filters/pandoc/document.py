"""Reading the document pandoc gives the filter: its slides and their titles as text, its live
blocks, its settings (:func:`deck_settings`, read once), and a slide deck read as a document."""

from __future__ import annotations

import difflib
import re

import panflute as pf

from filters.blocks.page import page_for
from filters.blocks.parsers import shown
from filters.blocks.settings import Settings, read_metadata
from filters.errors import BlockError, Where
from filters.kinds import KINDS
from filters.pandoc.settings import SLIDE_FORMATS, BuildSettings, DeckSettings

# What pandoc makes of a live block whose attributes it could not read: text starting "{.kind".
_UNREAD = re.compile(r"^\s*\{\s*\.(" + "|".join(map(re.escape, KINDS)) + r")\b")


# LaTeX in a slide title, as text a terminal shows: the commands a title's math uses most.
_MATH_WORDS = {r"\sqrt": "√", r"\cdot": "·", r"\times": "×", r"\to": "→", r"\rightarrow": "→", r"\le": "≤",
               r"\ge": "≥", r"\infty": "∞", r"\alpha": "α", r"\beta": "β", r"\lambda": "λ", r"\theta": "θ"}


def plain_text(elem) -> str:
    """An element (a slide title, metadata of any shape) as one line of plain text for messages:
    emphasis dropped, math read as text (``$\\sqrt{d_k}$`` → ``√d_k``), never LaTeX markup."""
    parts = []

    def collect(e, _doc):
        if isinstance(e, pf.Math):
            text = re.sub(r"\\[A-Za-z]+", lambda m: _MATH_WORDS.get(m[0], ""), e.text)
            parts.append(text.replace("{", "").replace("}", "").replace("~", " "))
        elif isinstance(e, (pf.Str, pf.Code)):
            parts.append(e.text)
        elif isinstance(e, (pf.Space, pf.SoftBreak, pf.LineBreak)):
            parts.append(" ")
        elif isinstance(e, (pf.MetaString,)):
            parts.append(e.text)
        elif isinstance(e, pf.MetaBool):
            parts.append(str(e.boolean))

    elem.walk(collect)
    return " ".join("".join(parts).split())


def slide_level(doc: pf.Doc, deck: str = "the deck") -> int:
    """Pandoc's rule: the highest header level directly followed by content (or ``slide-level``).
    ``deck``: how a message names the deck."""
    given = doc.get_metadata("slide-level", None)
    if given is not None:
        if not str(given).strip().isdigit() or not 0 <= int(given) <= 6:
            raise BlockError(f"slide-level is {shown(given)}: pandoc takes a header level, 0 to 6",
                             key="slide-level", where=Where(deck, "(metadata)", "in the deck's metadata"))
        return int(given)
    blocks = list(doc.content)
    levels = [
        block.level
        for block, after in zip(blocks, [*blocks[1:], None], strict=False)  # (an empty deck has no blocks)
        if isinstance(block, pf.Header) and after is not None and not isinstance(after, (pf.Header, pf.HorizontalRule))
    ]
    return min(levels, default=1)


def find_blocks(doc: pf.Doc, deck: str = "?", others: list | None = None) -> list[tuple[pf.CodeBlock, str, str]]:
    """Every live block with its kind and its slide's title, in document order. ``others``, when
    given, receives ``(class, slide)`` for every other code block that has a class.

    Raises:
        BlockError: for a block with two kinds, or one whose attributes pandoc could not read
            (it then shows the block as code on the slide).
    """
    level, found, current = slide_level(doc, deck), [], ["(before the first slide)"]

    def collect(elem, _doc):
        if isinstance(elem, pf.CodeBlock):
            kinds = [c for c in elem.classes if c in KINDS]
            if not kinds and elem.classes:
                close = difflib.get_close_matches(elem.classes[0], KINDS, n=1, cutoff=0.8)
                if close:
                    raise BlockError(f"'.{elem.classes[0]}' is no kind of live block; did you mean '.{close[0]}'?",
                                     where=Where(deck, current[0], "." + elem.classes[0]))
            if len(kinds) > 1:
                raise BlockError(f"a block has one kind, this one has {', '.join('.' + k for k in kinds)}",
                                 where=Where(deck, current[0], " ".join("." + c for c in elem.classes)))
            if kinds:
                found.append((elem, kinds[0], current[0]))
            elif elem.classes and others is not None:
                others.append((elem.classes[0], current[0]))
        if isinstance(elem, (pf.Code, pf.CodeBlock)) and not elem.classes and _UNREAD.match(elem.text):
            head = elem.text.strip().splitlines()[0][:60]
            raise BlockError("pandoc could not read this block's attributes, so it would show as code: write "
                             "them as {.kind #id key=value key=\"a b\"}, with no spaces around '='",
                             where=Where(deck, current[0], head))

    for block, title in slides_of(doc, level):
        current[0] = title  # the slide of the blocks collect() meets
        block.walk(collect)
    return found


def pin_to_top(doc: pf.Doc, elements: list[pf.Element]) -> None:
    """Start the frames that hold ``elements`` at their top (Beamer's ``[t]``, pandoc's ``{.t}`` on
    the slide's heading): what grows overlay by overlay (a worked example's steps, each taking
    room only once shown) would otherwise move up at each step of a vertically centred frame."""
    wanted = set()
    for elem in elements:
        while elem is not None and getattr(elem, "parent", None) is not doc:
            elem = getattr(elem, "parent", None)
        wanted.add(id(elem))
    level = slide_level(doc)
    heading = None
    for block in doc.content:
        if isinstance(block, pf.Header) and block.level <= level:
            heading = block
        elif isinstance(block, pf.HorizontalRule):
            heading = None  # a slide without a heading: no place for the option
        elif id(block) in wanted and heading is not None and not {"t", "b", "c"} & set(heading.classes):
            heading.classes.append("t")


def slides_of(doc: pf.Doc, level: int | None = None):
    """Each top-level block with the title of its slide, as messages name it: a header at or above
    the slide level starts a titled slide; a horizontal rule, an untitled one."""
    level = slide_level(doc) if level is None else level
    title, last = "(before the first slide)", None
    for block in doc.content:
        if isinstance(block, pf.Header) and block.level <= level:
            title = last = plain_text(block) or title
        elif isinstance(block, pf.HorizontalRule):
            title = f"(a slide without a title, after «{last}»)" if last else "(a slide without a title)"
        yield block, title


def _is_pause(elem) -> bool:
    """Pandoc's pause: a paragraph of three dots separated by spaces."""
    return isinstance(elem, pf.Para) and [type(e) for e in elem.content] == [pf.Str, pf.Space] * 2 + [pf.Str] and \
        all(e.text == "." for e in elem.content if isinstance(e, pf.Str))


def as_document(doc: pf.Doc) -> None:
    """Slides read as a document (a handout, a Word file): pauses and speaker notes (``::: notes``)
    go, as pandoc would print the pause's dots and the lecturer's notes, and so does the title of a
    frame that continues the one before under the same title (its figure), which would be an empty
    section."""
    if doc.format in SLIDE_FORMATS:
        return
    doc.walk(lambda e, _: [] if _is_pause(e) or (isinstance(e, pf.Div) and "notes" in e.classes) else None)
    last: dict[int, str] = {}  # the last title at each level
    kept = []
    for block in doc.content:
        if isinstance(block, pf.Header):
            title = plain_text(block)
            if last.get(block.level) == title:
                continue  # (not list.remove: panflute's elements are equal by content, so it would drop the first)
            last = {level: text for level, text in last.items() if level < block.level} | {block.level: title}
        kept.append(block)
    doc.content = kept


def deck_settings(doc: pf.Doc, build: BuildSettings) -> DeckSettings:
    """The deck's settings: the build's, and its metadata read once. An error in the ``attnslides:``
    metadata is kept in ``errors`` (reported with the blocks' errors, which are then read with no
    defaults)."""
    deck = " + ".join(n for n, _ in build.parts) if build.parts else str(build.deck) if build.deck else deck_title(doc)
    errors, raw = [], doc.get_metadata("attnslides", {})
    try:
        meta, defaults = read_metadata(raw, KINDS)
    except BlockError as exc:
        errors.append(exc.at(Where(deck, "(metadata)", "in the 'attnslides:' metadata")))
        meta, defaults = Settings(), {}
    theme = plain_text(doc.metadata["theme"]) if "theme" in doc.metadata else None
    given = isinstance(raw, dict) and any(str(k).replace("_", "-") == "pdf-engine" for k in raw)
    engine = meta.pdf_engine if given else (plain_text(doc.metadata["pdf-engine"]) if "pdf-engine" in doc.metadata else "auto")
    aspect = aspect_ratio(doc)  # the figures of every format are drawn as for the deck's Beamer frames
    return DeckSettings(build=build, deck=deck, fmt=doc.format, meta=meta, kind_defaults=defaults,
                        theme=theme or None, pdf_engine=engine or "auto", page=page_for(theme, aspect),
                        errors=tuple(errors))


def deck_title(doc: pf.Doc) -> str:
    """How messages name a deck whose file is not known: its title as text, whatever shape the
    metadata gives it (a string, a list, a map)."""
    title = plain_text(doc.metadata["title"]) if "title" in doc.metadata else ""
    return title or "(untitled deck)"


def aspect_ratio(doc: pf.Doc) -> str:
    """The deck's Beamer ``aspectratio`` (``"43"``, ``"169"`` …), from its metadata
    (``aspectratio: 169``) or its ``classoption`` (``aspectratio=169``); ``"43"``, Beamer's own, when
    it names none."""
    given = doc.get_metadata("aspectratio", None)
    if given is not None:
        return str(given).strip()
    options = doc.get_metadata("classoption", [])
    for option in options if isinstance(options, list) else str(options).split(","):
        name, _, value = str(option).partition("=")
        if name.strip() == "aspectratio" and value.strip():
            return value.strip()
    return "43"
