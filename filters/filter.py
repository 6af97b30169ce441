"""The Pandoc filter: live blocks in, figures and worked examples out (panflute's skeleton).

* :func:`prepare` finds every live block, parses all of them (a bad option stops the build
  before anything is drawn), looks each one up in the cache, and renders the misses (in parallel).
* :func:`action` replaces each live block with its ``Figure`` (or, for a text kind, with the
  elements its ``write`` gives: raw LaTeX in Beamer, math elsewhere), and copies the figure and its
  JSON data to ``<figures-dir>/<deck>/``.
* :func:`finalize` removes the filter's state from the document.

Run it as ``pandoc -F attnslides-filter`` or ``python -m filters``; tests call ``main(doc)``.
Environment (set by ``attnslides build``): ``ATTNSLIDES_DECK`` the deck's path, for messages and
folder names; ``ATTNSLIDES_DEVICE`` overrides the deck's device; ``ATTNSLIDES_OUTPUT_DIR`` the
folder of the output document, which figure paths are written relative to (default: the current one);
``ATTNSLIDES_FIGURES_DIR`` overrides the deck's ``figures-dir`` (a reveal.js deck keeps its figures
in its own folder).
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import panflute as pf

from filters import jobs as jobs_
from filters.cache import Cache, copy_atomic, key_for, project_root
from filters.errors import PREFIX, BlockError, BlockErrors, Where, tracebacks_wanted
from filters.kind import Kind
from filters.kinds import KINDS
from filters.labels import LABELS, LANGUAGES, language
from filters.options import Settings, parse_options, read_metadata, shown
from filters.scan import ScannedBlock, live_blocks, same_body

# Caption text with none of these characters is plain text: no need to ask pandoc to parse it.
_MARKDOWN = re.compile(r"[*_`$\\\[\]^~<>&]")
_LATEX_FORMATS = ("latex", "beamer")
_HTML_FORMATS = ("html", "html4", "html5", "revealjs", "slidy", "slideous", "dzslides", "s5", "epub", "epub2", "epub3")
# Formats that show slides one at a time: elsewhere (a handout, a Word file) pauses and speaker
# notes are dropped, and worked examples show every step at once.
SLIDE_FORMATS = ("beamer", "revealjs", "slidy", "slideous", "dzslides", "s5", "pptx")
# reveal.js draws a slide on a 960 × 700 px canvas (its default) and scales it to the window; under
# a title about 560 px are left for content: a height of 100 % (of Beamer's text height) fills them.
REVEAL_CONTENT_PX = 560
# Classes a code block may carry that are no language: pandoc's own, and plain-text listings.
_CODE_CLASSES = frozenset({"numberlines", "number-lines", "text", "plain", "output", "sourcecode", "example", "txt"})
# A block's id names its files: a name, never a path (no '/', no '..', not hidden).
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}")
# What pandoc makes of a live block whose attributes it could not read: text starting "{.kind".
_UNREAD = re.compile(r"^\s*\{\s*\.(" + "|".join(map(re.escape, KINDS)) + r")\b")


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

    def captions(self, lang: str) -> list[str]:
        """The captions of its pictures, in order: the block's own, else its kind's default."""
        given = self.options.figure_captions()
        if given or self.kind.output != "figure":
            return given
        return [self.kind.default_caption(self.options, lang)]


@dataclass
class DocState:
    """What the filter keeps on the document between :func:`prepare` and :func:`finalize`."""

    blocks: dict[int, LiveBlock]  # by id() of the code block element
    cache: Cache
    figures_dir: Path  # <figures-dir>/<deck>
    relative_to: Path  # image paths are written relative to the output document's folder
    fmt: str  # pandoc's output format
    lang: str
    markdown: dict[str, list[pf.Inline]] = field(default_factory=dict)  # Markdown text → inlines, read once


class BlockOutput:
    """What a kind's ``write`` gets (:class:`filters.kind.Out`): its pictures as Figures, Markdown."""

    def __init__(self, block: LiveBlock, state: DocState, folder: Path):
        self._block, self._state, self._folder = block, state, folder
        self.fmt, self.identifier, self.lang = state.fmt, block.elem.identifier, state.lang
        self.figures = block.pictures

    def figure(self, n: int = 1) -> pf.Figure:
        block, state = self._block, self._state
        if not 1 <= n <= block.pictures:
            raise BlockError(f"there is no picture {n}: the block made {block.pictures}", where=block.where)
        image_path = state.figures_dir / block.picture_file(n)
        copy_atomic(self._folder / f"figure-{n}.{block.ext}", image_path)
        captions = block.captions(state.lang)
        caption = self.markdown(captions[n - 1]) if n <= len(captions) else []
        url = Path(os.path.relpath(image_path, state.relative_to)).as_posix()
        if url.startswith("../") and state.fmt in _LATEX_FORMATS:
            # LaTeX runs in paranoid mode (filters.build.latex_env), which opens no '..' path: name the
            # picture from the project's folder, which is on TeX's search path.
            url = Path(os.path.relpath(image_path)).as_posix()
        height = height_for(block.options.height, state.fmt)
        alt = _words(block.options.alt)
        if not alt and caption and state.fmt not in _LATEX_FORMATS:
            # as pandoc's Markdown does: PowerPoint takes a figure's caption from it, HTML's readers use it
            alt = _words("".join(pf.stringify(e) for e in caption))
        image = pf.Image(*alt, url=url, attributes={"height": height})
        if not caption:  # a Figure would get a bare number ("Figura 3:"): a centred picture instead
            return _centred(image, url, height, state.fmt)
        extra = [c for c in block.elem.classes if c != block.kind.name]
        identifier = self.identifier if block.kind.output == "figure" or not self.identifier else f"{self.identifier}-{n}"
        return pf.Figure(pf.Plain(image), caption=pf.Caption(pf.Plain(*caption)), identifier=identifier, classes=extra)

    def markdown(self, text: str) -> list[pf.Inline]:
        if text not in self._state.markdown:
            self._state.markdown.update(_markdown([text]))
        return self._state.markdown[text]


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


def file_name(deck: Path | str) -> str:
    """The name a deck's outputs and figure folder take: its file's name without ``.md``, made a name
    every tool reads (LaTeX, in paranoid mode, refuses a leading dot; ``#``, ``%``, ``^``, spaces
    break its file names; a leading ``-`` reads as an option): ``"Clase 1 (Atención).md"`` →
    ``"Clase-1-Atencion"``."""
    text = unicodedata.normalize("NFKD", Path(deck).stem).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9_+-]+", "-", text).strip(".-_") or "deck"


def slugify(text: str) -> str:
    """``"Auto-atención"`` → ``"auto-atencion"``: a file name any tool accepts."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "slide"


def slide_level(doc: pf.Doc) -> int:
    """Pandoc's rule: the highest header level directly followed by content (or ``slide-level``)."""
    given = doc.get_metadata("slide-level", None)
    if given is not None:
        if not str(given).strip().isdigit() or not 0 <= int(given) <= 6:
            raise BlockError(f"slide-level is {shown(given)}: pandoc takes a header level, 0 to 6",
                             key="slide-level", where=Where(_deck_name(doc), "(metadata)", "in the deck's metadata"))
        return int(given)
    blocks = list(doc.content)
    levels = [
        block.level
        for block, after in zip(blocks, [*blocks[1:], None], strict=False)  # (an empty deck has no blocks)
        if isinstance(block, pf.Header) and after is not None and not isinstance(after, (pf.Header, pf.HorizontalRule))
    ]
    return min(levels, default=1)


def _deck_name(doc: pf.Doc) -> str:
    """How messages name the deck: its file (``attnslides build``), else its title as text, whatever
    shape the metadata gives it (a string, a list, a map)."""
    if os.environ.get("ATTNSLIDES_DECK"):
        return os.environ["ATTNSLIDES_DECK"]
    title = plain_text(doc.metadata["title"]) if "title" in doc.metadata else ""
    return title or "(untitled deck)"


def find_blocks(doc: pf.Doc, deck: str = "?", others: list | None = None) -> list[tuple[pf.CodeBlock, str, str]]:
    """Every live block with its kind and its slide's title, in document order. ``others``, when
    given, receives ``(class, slide)`` for every other code block that has a class.

    Raises:
        BlockError: for a block with two kinds, or one whose attributes pandoc could not read
            (it then shows the block as code on the slide).
    """
    level, found, current = slide_level(doc), [], ["(before the first slide)"]

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


def _deck_lines(deck: str, found) -> list[ScannedBlock | None]:
    """Each found block as the deck's text writes it (its line, the keys it repeats), read when the
    text is at hand (``attnslides build``): each block pandoc found is matched, in order, with the
    next block of the text of its kind and body; one that matches none gets ``None``."""
    try:
        scanned = live_blocks(Path(deck).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [None] * len(found)
    blocks, start = [], 0
    for elem, kind, _ in found:
        match = next((n for n in range(start, len(scanned))
                      if scanned[n].kind == kind and same_body(scanned[n].body, elem.text)), None)
        blocks.append(None if match is None else scanned[match])
        start = start if match is None else match + 1
    return blocks


def _parse_all(doc: pf.Doc, deck: str, defaults: dict, ext: str, others: list) -> tuple[list[LiveBlock], list]:
    """Parse every live block, all of them before anything is drawn.

    Returns:
        ``(blocks, errors)``: the blocks that parsed, and a :class:`BlockError` for each that did not.
    """
    found = find_blocks(doc, deck, others)
    blocks, names, errors = [], {}, []
    for n, ((elem, name, title), written) in enumerate(zip(found, _deck_lines(deck, found), strict=True), start=1):
        kind = KINDS[name]
        label = f".{name}" + (f" #{elem.identifier}" if elem.identifier else "") + f" (live block {n} of {len(found)})"
        where = Where(deck, title, label, written.line if written else None)
        if written and written.repeated:
            errors.append(BlockError("given twice in the block's attributes (pandoc keeps the last); keep one",
                                     key=written.repeated[0], where=where))
            continue
        try:
            options = parse_options(kind.options, dict(elem.attributes), elem.text, defaults.get(name))
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


def _is_pause(elem) -> bool:
    """Pandoc's pause: a paragraph of three dots separated by spaces."""
    return isinstance(elem, pf.Para) and [type(e) for e in elem.content] == [pf.Str, pf.Space] * 2 + [pf.Str] and \
        all(e.text == "." for e in elem.content if isinstance(e, pf.Str))


def _as_document(doc: pf.Doc) -> None:
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


def prepare(doc: pf.Doc) -> None:
    _check_pandoc()
    _as_document(doc)
    deck = _deck_name(doc)
    errors = []
    try:
        settings, defaults = read_metadata(doc.get_metadata("attnslides", {}), KINDS)
    except BlockError as exc:  # reported with the blocks' errors; the blocks are read with no defaults
        errors.append(exc.at(Where(deck, "(metadata)", "in the 'attnslides:' metadata")))
        settings, defaults = Settings(), {}
    # the figures of a family are the same files: a handout's are the slides', Word's PowerPoint's
    family = "latex" if doc.format in _LATEX_FORMATS else "html" if doc.format in _HTML_FORMATS else "office"
    ext = {"latex": "pdf", "html": "svg", "office": "png"}[family]
    others: list[tuple[str, str]] = []
    blocks, block_errors = _parse_all(doc, deck, defaults, ext, others)
    errors += block_errors
    cache = Cache(settings.cache_dir)
    _warn_unknown_classes(others, deck, cache)
    if not errors and not blocks:
        return  # a deck without live blocks costs nothing and writes nothing
    try:
        lang = settings.lang or _deck_language(doc, deck)
    except BlockError as exc:
        errors.append(exc)
    if errors:
        raise errors[0] if len(errors) == 1 else BlockErrors(errors, deck)
    device = _device(settings, deck)
    execute = settings.execute and os.environ.get("ATTNSLIDES_EXECUTE", "1") != "0"
    misses = {}
    for block in blocks:
        fmt = f"{family}/{block.ext}" if block.ext else "text"  # a text kind's entry is data only
        block.key = key_for(block.kind, block.options, fmt=fmt, device=device, lang=lang, sources=cache.sources)
        if cache.entry(block.key) is not None or block.key in misses:
            continue
        if block.kind.executes and not execute:
            block.skipped = True  # its code is shown instead: never run the deck's code when told not to
            continue
        misses[block.key] = jobs_.Job(block.kind.name, block.options, block.key, str(cache.root), block.ext,
                                      device, lang, block.where, block.kind.cost, block.kind.executes)
    if misses:
        jobs_.run_all(list(misses.values()), workers=settings.jobs, progress=_progress)
    cache.sources.save()
    for block in blocks:
        if block.ext and not block.skipped:
            block.pictures = len(list(cache.entry(block.key).glob(f"figure-*.{block.ext}")))

    root = Path(os.environ.get("ATTNSLIDES_FIGURES_DIR") or settings.figures_dir)
    folder, identity, known = _figures_folder(doc, deck, root, cache)
    if not known:  # under `pandoc -F` two decks may share a title (or have none): names by content
        for block in blocks:
            block.name = f"{block.name}-{block.key[:8]}"
    state = DocState(blocks={id(b.elem): b for b in blocks}, cache=cache, figures_dir=folder,
                     relative_to=Path(os.environ.get("ATTNSLIDES_OUTPUT_DIR", ".")), fmt=doc.format, lang=lang)
    state.markdown = _markdown([text for b in blocks if not b.skipped for text in b.captions(lang)])
    doc.attnslides = state
    cache.record(deck, family, [b.key for b in blocks], [folder / f for b in blocks for f in b.files],
                 identity=identity, folder=folder)


def _check_pandoc() -> None:
    """Stop before any figure is computed when the pandoc running the filter is older than 3
    (``PANDOC_VERSION``, which pandoc gives its filters): it cannot read the Figures we write."""
    version = os.environ.get("PANDOC_VERSION", "")
    major = version.split(".")[0]
    if major.isdigit() and int(major) < 3:
        import pypandoc

        raise BlockError(f"this is pandoc {version}, and attnslides needs pandoc 3 or later (it writes Figure "
                         f"elements, which pandoc {version} cannot read). Use the pandoc installed with attnslides: "
                         f"{pypandoc.get_pandoc_path()}, or `attnslides build`")


def _device(settings: Settings, deck: str) -> str:
    """The device the engine runs on, checked now, before any figure: named with where it was set."""
    from engine.device import resolve

    given = os.environ.get("ATTNSLIDES_DEVICE")
    device = given or settings.device
    if device == "cpu":
        return device
    where = "by --device (or make's DEVICE=)" if given else "in the deck's metadata 'attnslides: {device: …}'"
    try:
        resolved = resolve(device)
        if resolved != "cpu":
            from engine.device import pick

            pick(resolved)
    except (RuntimeError, ValueError) as exc:
        raise BlockError(f"the device '{device}' was asked for {where}, and {exc}; build on the cpu or on "
                         "a machine that has it", where=Where(deck, "(metadata)", "the build's device")) from None
    return device


def _figures_folder(doc: pf.Doc, deck: str, root: Path, cache: Cache) -> tuple[Path, str, bool]:
    """The folder of this deck's figures, what tells this deck from another of the same name, and
    whether the deck's file is known (when it is not, the figures' file names carry their cache key).

    ``<figures-dir>/<deck's file name>`` (``transformers-1``) when the deck's path is known,
    ``<figures-dir>/<slug of its title>`` under ``pandoc -F``, or ``deck-<hash of its slide
    titles>`` for a deck without a title. When another deck's figures are already there (two
    ``deck.md`` in two folders, two decks of one title), a hash of this deck's path or title is
    added. Under ``pandoc -F`` the filter cannot tell two decks of one title (or of none) apart, so
    each file's name then ends with its cache key: two decks never write each other's files.
    """
    path = Path(deck)
    known = deck.endswith(".md") and path.is_file()
    if known:
        name, identity = file_name(path), str(path.resolve())
    else:
        title = plain_text(doc.metadata["title"]) if "title" in doc.metadata else ""
        headers = "\n".join(plain_text(h) for h in doc.content if isinstance(h, pf.Header))
        identity = f"title:{title}" if title else f"slides:{headers}"
        digest = hashlib.sha256(identity.encode()).hexdigest()[:8]
        name = slugify(title) if title else f"deck-{digest}"
    folder = root / name
    if cache.owners(folder) - {identity}:
        folder = root / f"{name}-{hashlib.sha256(identity.encode()).hexdigest()[:8]}"
    return folder, identity, known


def _warn_unknown_classes(others: list[tuple[str, str]], deck: str, cache: Cache) -> None:
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
    from filters.cache import pandoc_version, write_atomic

    record = cache.root / f".highlight-languages-{pandoc_version()}.json"
    try:
        return frozenset(json.loads(record.read_text()))
    except (OSError, ValueError):
        pass
    import pypandoc

    done = subprocess.run([pypandoc.get_pandoc_path(), "--list-highlight-languages"], capture_output=True, text=True)
    names = frozenset(done.stdout.split())
    if names and cache.root.is_dir():
        write_atomic(record, json.dumps(sorted(names)).encode())
    return names


def _deck_language(doc: pf.Doc, deck: str) -> str:
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


def _progress(done: int, total: int, job, seconds: float) -> None:
    print(f"{PREFIX} figure {done}/{total} «{job.where.slide}» {job.where.block.split(' (')[0]} {seconds:.1f} s",
          file=sys.stderr, flush=True)


# What would make a line of Markdown a block (a list item, a quote, a heading, a table row) instead
# of text: escaped in a caption, which is text.
_BLOCK_START = re.compile(r"^(?:[#>*+|:-]|\d+[.)]|\(\w+\)|[A-Za-z][.)](?=\s)|[ivxlcdmIVXLCDM]+[.)](?=\s))")


def _markdown(texts: list[str]) -> dict[str, list[pf.Inline]]:
    """Each text (a caption …) read as one line of Markdown *inlines*: Markdown ones by one pandoc
    call for all, plain ones directly. Each is parsed on its own (in a div of its own, its block
    markers escaped, so "2. Paso" stays text and an HTML comment in one never shifts another)."""
    rich = sorted({t for t in texts if _MARKDOWN.search(t) or _BLOCK_START.match(t.strip())})
    parsed = {t: _words(t) for t in texts if t not in rich}
    if rich:
        import pypandoc

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
        blocks = pf.convert_text(source, input_format="markdown", pandoc_path=pypandoc.get_pandoc_path())
        found = {b.identifier: b for b in blocks if isinstance(b, pf.Div)}
        for n, text in enumerate(rich):
            div = found.get(f"attnslides-text-{n}")
            inlines = []
            for block in div.content if div is not None else []:
                if isinstance(block, (pf.Para, pf.Plain)):
                    inlines += ([pf.Space()] if inlines else []) + list(block.content)
            # an HTML comment alone is no caption at all; pandoc's reading is kept as it is
            parsed[text] = inlines if div is not None else _words(text)
    return parsed


def _words(text: str) -> list[pf.Inline]:
    """Plain text as inlines: words and the spaces between them."""
    out = []
    for word in text.split():
        out += [pf.Str(word), pf.Space()]
    return out[:-1]


def _picture_in_the_project(image: pf.Image, doc: pf.Doc) -> None:
    """Under ``attnslides build``, for LaTeX: a picture the deck names with ``..``
    (``../figuras/a.png``) is named from the project's folder (:func:`filters.cache.project_root`)
    instead, which is on TeX's search path:
    LaTeX in paranoid mode opens no ``..`` path. A picture outside the project stays as written
    (LaTeX then says it is not found, naming the slide)."""
    deck, url = os.environ.get("ATTNSLIDES_DECK"), image.url
    if not deck or doc.format not in _LATEX_FORMATS or "://" in url or ".." not in PurePosixPath(url).parts:
        return
    found, project = (Path(deck).resolve().parent / url).resolve(), project_root()
    if found.is_file() and found.is_relative_to(project):
        image.url = found.relative_to(project).as_posix()
    elif found.is_file():
        print(f"{PREFIX} warning: {deck}: the picture {url} is outside the project ({project}: the git repository, "
              "or the folder you build from), where LaTeX reads nothing: build from a folder that holds it",
              file=sys.stderr)


def action(elem, doc):
    if isinstance(elem, pf.Image):
        _picture_in_the_project(elem, doc)
        return None
    state: DocState | None = getattr(doc, "attnslides", None)
    if state is None or not isinstance(elem, pf.CodeBlock) or id(elem) not in state.blocks:
        return None
    block = state.blocks[id(elem)]
    if block.skipped:
        return _not_run(block, state.lang)
    folder, data = jobs_.load(state.cache, block.key)
    out = BlockOutput(block, state, folder)
    try:
        written = block.kind.write(data, block.options, out) if block.kind.write else out.figure(1)
    except BlockError as exc:  # e.g. more captions than figures: found only once the figures are known
        raise (exc if exc.where else exc.at(block.where)) from None
    copy_atomic(folder / "data.json", state.figures_dir / f"{block.name}.json")
    return written


def height_for(height: str, fmt: str) -> str:
    """A block's ``height`` (a share of a Beamer frame's text height, or a length) as ``fmt`` needs
    it: as given for Beamer; for a LaTeX article, the length it has on the slide (a slide's text is
    about as wide as a page's); pixels of reveal.js's canvas for HTML (a percentage of an image's
    box would be ignored there); inches for Word and PowerPoint."""
    from filters.options import SLIDE_TEXT_HEIGHT_PT, slide_points

    if fmt == "beamer":
        return height
    points = slide_points(height)
    if fmt in _LATEX_FORMATS:
        return f"{points:.1f}pt"
    if fmt in _HTML_FORMATS:
        return f"{points / SLIDE_TEXT_HEIGHT_PT * REVEAL_CONTENT_PX:.0f}px"
    return f"{points / 72.27:.2f}in"


def _centred(image: pf.Image, url: str, height: str, fmt: str) -> pf.Block:
    """A picture without a caption, centred: as pandoc sizes a figure's image in LaTeX, else as is."""
    if fmt not in _LATEX_FORMATS:
        return pf.Para(image)
    size = f"{float(height[:-1]) / 100:g}\\textheight" if height.endswith("%") else height
    return pf.RawBlock(f"\\begin{{center}}\\includegraphics[width=\\linewidth,height={size},keepaspectratio]"
                       f"{{{url}}}\\end{{center}}", format="latex")


def _not_run(block: LiveBlock, lang: str) -> list[pf.Block]:
    """A block whose code was not run (``--no-exec``, nothing cached): its code and a visible note."""
    code = "\n".join(line for line in block.elem.text.splitlines() if not line.lstrip().startswith("#|"))
    language_ = [c for c in block.elem.classes if c != block.kind.name][:1]
    return [pf.CodeBlock(code.strip("\n"), classes=language_),
            pf.Para(pf.Emph(*_words(LABELS[lang]["not_run"])))]


def finalize(doc: pf.Doc) -> None:
    if hasattr(doc, "attnslides"):
        del doc.attnslides
    _check_code_width(doc)


# Characters a line of code holds on a Beamer frame: Latin Modern Mono at 11 pt is 5.75 pt a
# character in 307 pt of text (a 54-character line is 3 pt too wide, measured). Highlighted code
# (fancyvrb) runs off the slide with no word in LaTeX's log, so the filter counts.
CODE_COLUMNS = 53


def _check_code_width(doc: pf.Doc) -> None:
    """In Beamer, a line of code (the deck's, a ``.run`` block's listing or printed output) longer
    than :data:`CODE_COLUMNS` stops the build naming its slide (``overflow: warn`` only warns)."""
    if doc.format != "beamer":
        return
    found = []

    def look(elem, _doc, title):
        if isinstance(elem, pf.CodeBlock):
            longest = max((len(line.expandtabs(4)) for line in elem.text.splitlines()), default=0)
            if longest > CODE_COLUMNS:
                found.append((title, longest))

    for block, title in slides_of(doc):
        block.walk(lambda elem, d, title=title: look(elem, d, title))
    if not found:
        return
    try:
        overflow = read_metadata(doc.get_metadata("attnslides", {}), KINDS)[0].overflow
    except BlockError:
        overflow = "error"
    deck = _deck_name(doc)
    errors = [BlockError(f"a line of {n} characters runs off the slide (at most {CODE_COLUMNS} fit): break it, or "
                         "print less per line", where=Where(deck, title, "a code block")) for title, n in found]
    if overflow == "warn":
        for error in errors:
            print(f"{PREFIX} warning: {str(error).removeprefix(PREFIX + ' ')}", file=sys.stderr)
        return
    raise errors[0] if len(errors) == 1 else BlockErrors(errors, deck)


def filter_json(ast_json: str, fmt: str, env: dict[str, str] | None = None) -> str:
    """Run the filter in this process on a Pandoc JSON document for the output format ``fmt``,
    with ``env`` added to the environment while it runs (what ``attnslides build`` tells the filter:
    the deck, the output folder …); return the filtered JSON. ``attnslides build`` and ``watch`` call
    this, sparing a Python process per build; ``pandoc -F attnslides-filter`` runs :func:`main`.

    Raises:
        BlockError: as :func:`main` with a document.
    """
    saved = {name: os.environ.get(name) for name in env or {}}
    os.environ.update(env or {})
    try:
        doc = pf.load(io.StringIO(ast_json))
        doc.format = fmt
        out = io.StringIO()
        pf.dump(main(doc), out)
        return out.getvalue()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main(doc: pf.Doc | None = None):
    """Run the filter. With ``doc`` (tests), return the filtered document and let a
    :class:`BlockError` propagate; as a Pandoc filter, print it on stderr and exit with status 1."""
    if doc is not None:
        return pf.run_filter(action, prepare=prepare, finalize=finalize, doc=doc)
    try:
        pf.run_filter(action, prepare=prepare, finalize=finalize)
    except KeyboardInterrupt:  # unfinished figures stay in .tmp- folders, which no build trusts
        sys.exit(130)
    except Exception as exc:
        print(explain(exc), file=sys.stderr)
        sys.exit(1)


def explain(exc: Exception) -> str:
    """What the lecturer reads for an exception out of the filter: a :class:`BlockError` as it is;
    a folder that cannot be written (read-only, a full disk, a file in the way) as such; anything
    else as a bug of ours, not the deck's, with how to see more."""
    if isinstance(exc, BlockError):
        return str(exc)
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return (f"{PREFIX} {os.environ.get('ATTNSLIDES_DECK', 'the deck')}: cannot write{where}: "
                f"{exc.strerror or exc} (check the figures-dir and cache-dir folders and the free space)")
    import traceback

    return (f"{PREFIX} internal error, not the deck's fault: {type(exc).__name__}: {exc}"
            + ("\n" + "".join(traceback.format_exception(exc)) if tracebacks_wanted() else
               " (ATTNSLIDES_TRACEBACK=1 or `attnslides build --traceback` shows where)"))


if __name__ == "__main__":
    main()
