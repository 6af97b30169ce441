"""What a live block becomes in the document: its pictures as Figures sized for the output format,
its captions read as Markdown, the lecturer's own pictures named where LaTeX finds them."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path, PurePosixPath

import panflute as pf

from filters.blocks.page import DEFAULT_PAGE, Page
from filters.errors import PREFIX, BlockError
from filters.pandoc.settings import HTML_FORMATS, LATEX_FORMATS, DeckSettings
from filters.util.files import copy_atomic, project_root
from filters.util.pandoc import PandocTimeout, read_text

# reveal.js draws a slide on a 960 × 700 px canvas (its default) and scales it to the window; under
# a title about 560 px are left for content: a height of 100 % (of Beamer's text height) fills them.
REVEAL_CONTENT_PX = 560


class BlockOutput:
    """What a kind's ``write`` gets (:class:`filters.blocks.kind.Out`): its pictures as Figures, Markdown."""

    def __init__(self, block, state, folder: Path | None):
        """``block``: a :class:`filters.pandoc.parse.LiveBlock`; ``state``: the document's
        :class:`filters.pandoc.filter.DocState`; ``folder``: the block's cache entry."""
        self._block, self._state, self._folder = block, state, folder
        self.fmt, self.identifier, self.lang = state.fmt, block.elem.identifier, state.lang
        self.classes = [c for c in block.elem.classes if c != block.kind.name]
        self.figures = block.pictures

    def figure(self, n: int = 1, *, height: str | None = None, caption: int | None = None) -> pf.Figure:
        block, state = self._block, self._state
        if not 1 <= n <= block.pictures:
            raise BlockError(f"there is no picture {n}: the block made {block.pictures}", where=block.where)
        image_path = state.figures_dir / block.picture_file(n)
        copy_atomic(self._folder / f"figure-{n}.{block.ext}", image_path)
        captions = block.captions(state.lang)
        which = n if caption is None else caption  # the caption of another number (0: none)
        caption = self.markdown(captions[which - 1]) if 1 <= which <= len(captions) else []
        url = Path(os.path.relpath(image_path, state.relative_to)).as_posix()
        if url.startswith("../") and state.fmt in LATEX_FORMATS:
            # LaTeX runs in paranoid mode (filters.latex.env), which opens no '..' path: name the
            # picture from the project's folder, which is on TeX's search path.
            url = Path(os.path.relpath(image_path)).as_posix()
        height = height_for(height or block.options.height, state.fmt, state.settings.page)
        alt = words(block.options.alt)
        if not alt and caption and state.fmt not in LATEX_FORMATS:
            # as pandoc's Markdown does: PowerPoint takes a figure's caption from it, HTML's readers use it
            alt = words("".join(pf.stringify(e) for e in caption))
        image = pf.Image(*alt, url=url, attributes={"height": height})
        state.produced.add(id(image))  # the build's own figure, not a file the deck names
        if not caption:  # a Figure would get a bare number ("Figura 3:"): a centred picture instead
            return _centred(image, url, height, state.fmt)
        identifier = self.identifier if block.kind.output == "figure" or not self.identifier else f"{self.identifier}-{n}"
        return pf.Figure(pf.Plain(image), caption=pf.Caption(pf.Plain(*caption)), identifier=identifier, classes=self.classes)

    def markdown(self, text: str) -> list[pf.Inline]:
        if text not in self._state.markdown:
            try:
                self._state.markdown.update(markdown([text]))
            except BlockError as exc:
                raise exc.at(self._block.where) from None
        return self._state.markdown[text]


def height_for(height: str, fmt: str, page: Page = DEFAULT_PAGE) -> str:
    """A block's ``height`` (a share of a Beamer frame's text height, or a length) as ``fmt`` needs
    it: for Beamer and a LaTeX article, the length it has on the slide, which the figure is drawn at
    (:meth:`filters.blocks.page.Page.points`; a slide's text is about as wide as a page's); pixels
    of reveal.js's canvas for HTML (a percentage of an image's box would be ignored there); inches
    for Word and PowerPoint. ``page``: the deck's frames."""

    points = page.points(height)
    if fmt in LATEX_FORMATS:
        return f"{points:.1f}pt"
    if fmt in HTML_FORMATS:
        return f"{points / page.text_height * REVEAL_CONTENT_PX:.0f}px"
    return f"{points / 72.27:.2f}in"


def _centred(image: pf.Image, url: str, height: str, fmt: str) -> pf.Block:
    """A picture without a caption, centred: as pandoc sizes a figure's image in LaTeX, else as is."""
    if fmt not in LATEX_FORMATS:
        return pf.Para(image)
    size = f"{float(height[:-1]) / 100:g}\\textheight" if height.endswith("%") else height
    return pf.RawBlock(f"\\begin{{center}}\\includegraphics[width=\\linewidth,height={size},keepaspectratio]"
                       f"{{{url}}}\\end{{center}}", format="latex")


# Caption text with none of these characters is plain text: no need to ask pandoc to parse it.
_MARKDOWN = re.compile(r"[*_`$\\\[\]^~<>&]")


# What would make a line of Markdown a block (a list item, a quote, a heading, a table row) instead
# of text: escaped in a caption, which is text.
_BLOCK_START = re.compile(r"^(?:[#>*+|:-]|\d+[.)]|\(\w+\)|[A-Za-z][.)](?=\s)|[ivxlcdmIVXLCDM]+[.)](?=\s))")


def markdown(texts: list[str]) -> dict[str, list[pf.Inline]]:
    """Each text (a caption …) read as one line of Markdown *inlines*: Markdown ones by one pandoc
    call for all, plain ones directly. Each is parsed on its own (in a div of its own, its block
    markers escaped, so "2. Paso" stays text and an HTML comment in one never shifts another)."""
    rich = sorted({t for t in texts if _MARKDOWN.search(t) or _BLOCK_START.match(t.strip())})
    parsed = {t: words(t) for t in texts if t not in rich}
    if rich:

        def line(text: str) -> str:
            text = " ".join(text.split())
            start = _BLOCK_START.match(text)
            if not start:
                return text
            if text.startswith("("):  # "(a) …": an example list's marker in pandoc's Markdown
                return "\\" + text
            end = start.end() - 1  # the marker's last character: "2." → "2\\.", "- x" → "\\- x"
            return text[:end] + "\\" + text[end:]

        source = "\n\n".join(f"::: {{#attnslides-text-{n}}}\n{line(t)}\n:::" for n, t in enumerate(rich))
        try:
            blocks = read_blocks(source, "markdown")
        except PandocTimeout as exc:
            shown = rich[0] if len(rich) == 1 else "the captions and texts of its blocks"
            raise BlockError(f"pandoc read {shown!r} for more than {exc.limit:g} s and was stopped: brackets or "
                             "emphasis nested many levels deep? Write it plainer") from None
        found = {b.identifier: b for b in blocks if isinstance(b, pf.Div)}
        for n, text in enumerate(rich):
            div = found.get(f"attnslides-text-{n}")
            inlines = []
            for block in div.content if div is not None else []:
                if isinstance(block, (pf.Para, pf.Plain)):
                    inlines += ([pf.Space()] if inlines else []) + list(block.content)
            # an HTML comment alone is no caption at all; pandoc's reading is kept as it is
            parsed[text] = inlines if div is not None else words(text)
    return parsed


def read_blocks(text: str, input_format: str) -> list[pf.Block]:
    """``text`` read by pandoc as ``input_format``, within
    :data:`filters.util.pandoc.TEXT_TIME_LIMIT_S` (nothing when pandoc fails).

    Raises:
        PandocTimeout: when pandoc ran past that limit.
    """
    out = read_text(text, input_format)
    return json.loads(out, object_hook=pf.elements.from_json).content.list if out else []


def words(text: str) -> list[pf.Inline]:
    """Plain text as inlines: words and the spaces between them."""
    out = []
    for word in text.split():
        out += [pf.Str(word), pf.Space()]
    return out[:-1]


def picture_in_the_project(image: pf.Image, settings: DeckSettings) -> None:
    """Under ``attnslides build``, for LaTeX: a picture the deck names with ``..``
    (``../figuras/a.png``) is named from the project's folder (:func:`filters.util.files.project_root`)
    instead, which is on TeX's search path:
    LaTeX in paranoid mode opens no ``..`` path. A picture outside the project stays as written
    (LaTeX then says it is not found, naming the slide)."""
    deck, url = settings.build.deck, image.url
    if not deck or settings.fmt not in LATEX_FORMATS or "://" in url or ".." not in PurePosixPath(url).parts:
        return
    found, project = (Path(deck).resolve().parent / url).resolve(), project_root()
    if found.is_file() and found.is_relative_to(project):
        image.url = found.relative_to(project).as_posix()
    elif found.is_file():
        print(f"{PREFIX} warning: {deck}: the picture {url} is outside the project ({project}: the git repository, "
              "or the folder you build from), where LaTeX reads nothing: build from a folder that holds it",
              file=sys.stderr)


def code_at_size(doc: pf.Doc, size: str) -> None:
    """Set every code block of a Beamer deck at the LaTeX font ``size`` (the deck's ``code-size``:
    ``scriptsize`` …; ``normalsize`` changes nothing): each in a group that opens with the size. Both
    of pandoc's code environments take the size they start in: fancyvrb's ``Highlighting`` (its
    ``fontsize=auto``) and ``verbatim``."""
    if doc.format != "beamer" or size == "normalsize":
        return

    def sized(elem, _doc):
        if isinstance(elem, pf.CodeBlock):
            return [pf.RawBlock(f"\\begingroup\\{size}", format="latex"), elem,
                    pf.RawBlock("\\endgroup", format="latex")]
        return None

    doc.walk(sized)
