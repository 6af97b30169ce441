"""The live blocks of a document, each parsed into its kind's options and given its file name
(all of them before anything is computed, so that every error is reported at once)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import panflute as pf

from filters.blocks.kind import Kind
from filters.blocks.options import parse_options
from filters.blocks.page import Page
from filters.blocks.parsers import shown
from filters.errors import BlockError, Where
from filters.kinds import KINDS
from filters.pandoc.document import find_blocks
from filters.pandoc.scan import ScannedBlock, live_blocks, same_body
from filters.pandoc.settings import DeckSettings
from filters.util.names import slugify

# A block's id names its files: a name, never a path (no '/', no '..', not hidden).
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}")


@dataclass
class LiveBlock:
    """One live block, found and parsed in :func:`prepare`."""

    elem: pf.CodeBlock
    kind: Kind
    options: object  # an instance of kind.options
    where: Where
    name: str  # file name (no extension) in the deck's figures folder
    ext: str  # picture file type (pdf, svg, png); "" for a text kind
    key: str = ""
    pictures: int = 0  # how many pictures its entry holds (known once it is computed)
    skipped: bool = False  # code not run (--no-exec) and no cached result: its code is shown instead

    def picture_file(self, n: int) -> str:
        """The file name of picture ``n`` in the deck's figures folder: ``<id>.pdf`` for a kind of one
        picture, ``<id>-1.pdf``, ``<id>-2.pdf`` … for one of several."""
        return f"{self.name}.{self.ext}" if self.kind.output == "figure" else f"{self.name}-{n}.{self.ext}"

    @property
    def files(self) -> list[str]:
        """The files it puts in the deck's figures folder."""
        return [] if self.skipped else [f"{self.name}.json", *(self.picture_file(n) for n in range(1, self.pictures + 1))]

    def page(self, deck_page: Page) -> Page:
        """The room its figures have: the deck's page, narrowed to the Beamer columns it sits in."""
        return deck_page.within(column_share(self.elem))

    def captions(self, lang: str) -> list[str]:
        """The captions of its pictures, in order: the block's own, else its kind's default."""
        given = self.options.figure_captions()
        if given or self.kind.output != "figure":
            return given
        return [self.kind.default_caption(self.options, lang)]


# pandoc's Beamer writer: a column without a width is 0.48 of the line (\begin{column}{0.48\linewidth}).
_COLUMN_SHARE = 0.48


def column_share(elem: pf.Element) -> float:
    """The share of the text width ``elem`` has: 1, or the product of the widths of the columns
    (``::: {.column width="40%"}``) it sits in, as pandoc's Beamer writer gives them."""
    share, node = 1.0, elem.parent
    while node is not None:
        if isinstance(node, pf.Div) and "column" in node.classes:
            width = str(node.attributes.get("width", "")).strip()
            share *= float(width[:-1]) / 100 if re.fullmatch(r"\d+(?:\.\d+)?%", width) else _COLUMN_SHARE
        node = getattr(node, "parent", None)
    return share



def _deck_lines(text: str | None, found) -> list[ScannedBlock | None]:
    """Each found block as the deck's ``text`` writes it (its line, the keys it repeats), when the
    text is at hand (``attnslides build``): each block pandoc found is matched, in order, with the
    next block of the text of its kind and body; one that matches none gets ``None``."""
    if text is None:
        return [None] * len(found)
    scanned = live_blocks(text)
    blocks, start = [], 0
    for elem, kind, _ in found:
        match = next((n for n in range(start, len(scanned))
                      if scanned[n].kind == kind and same_body(scanned[n].body, elem.text)), None)
        blocks.append(None if match is None else scanned[match])
        start = start if match is None else match + 1
    return blocks


def _in_a_note(elem: pf.Element) -> bool:
    """Whether ``elem`` is inside a footnote (``[^1]: …`` with an indented block)."""
    parent = elem.parent
    while parent is not None and not isinstance(parent, pf.Note):
        parent = parent.parent
    return parent is not None


def parse_all(doc: pf.Doc, settings: DeckSettings, others: list) -> tuple[list[LiveBlock], list]:
    """Parse every live block, all of them before anything is drawn.

    Returns:
        ``(blocks, errors)``: the blocks that parsed, and a :class:`BlockError` for each that did not.
    """
    deck, ext = settings.deck, settings.ext
    found = find_blocks(doc, deck, others)
    blocks, names, errors = [], {}, []
    for n, ((elem, name, title), written) in enumerate(zip(found, _deck_lines(settings.build.deck_text, found),
                                                             strict=True), start=1):
        kind = KINDS[name]
        label = f".{name}" + (f" #{elem.identifier}" if elem.identifier else "") + f" (live block {n} of {len(found)})"
        where = Where(deck, title, label, written.line if written else None)
        if written and settings.build.parts:  # a deck of several files: the file the block is in
            part, line = settings.build.place(written.line)
            where = Where(part or deck, title, label, line)
        if _in_a_note(elem):
            errors.append(BlockError("a live block cannot be in a footnote: its figure or worked example needs the "
                                     "slide itself (LaTeX cannot place one in a note); put the block on the slide "
                                     "and say in the note what it shows", where=where))
            continue
        if written and written.repeated:
            errors.append(BlockError("given twice in the block's attributes (pandoc keeps the last); keep one",
                                     key=written.repeated[0], where=where))
            continue
        try:
            options = parse_options(kind.options, dict(elem.attributes), elem.text, settings.kind_defaults.get(name))
        except BlockError as exc:
            errors.append(exc.at(where))
            continue
        if elem.identifier and not _ID.fullmatch(elem.identifier):
            errors.append(BlockError(f"the id {shown(elem.identifier)} names a figure's file and its LaTeX label: "
                                     "use at most 80 letters, digits, '-', '_', ':' or '.', starting with a letter "
                                     "or digit (an id is a name, not a path)", key="id", where=where))
            continue
        if elem.identifier and elem.identifier in names:
            errors.append(BlockError(f"the id #{elem.identifier} is already used by {names[elem.identifier].block}; "
                                     "ids name figures and LaTeX labels, so each must be unique", where=where))
            continue
        file = elem.identifier.replace(":", "-") if elem.identifier else f"{slugify(title)[:60]}-{name}"
        base, i = file, 2
        while file in names:
            file, i = f"{base}-{i}", i + 1
        names[file] = where
        blocks.append(LiveBlock(elem, kind, options, where, file, "" if kind.output == "text" else ext))
    # A block of several pictures writes <name>-1, <name>-2 …: no other block's file may be one of them.
    several = {b.name: b for b in blocks if b.kind.output == "figures"}
    for block in list(blocks):
        owner = next((several[m[1]] for m in [re.fullmatch(r"(.+)-\d+", block.name)] if m and m[1] in several), None)
        if owner is None or owner is block:
            continue
        if block.elem.identifier:
            errors.append(BlockError(f"the id #{block.elem.identifier} is the name of a picture of {owner.where.block}, "
                                     f"which writes {owner.name}-1, {owner.name}-2 …: choose another id", key="id",
                                     where=block.where))
            blocks.remove(block)
        else:
            block.name = f"{block.name}-b"
    return blocks, errors
