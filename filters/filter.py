"""The Pandoc filter: live blocks in, figures and worked examples out (panflute's skeleton).

* :func:`prepare` finds every live block, parses all of them (a bad option stops the build
  before anything is drawn), looks each one up in the cache, and renders the misses (in parallel).
* :func:`action` replaces each live block with its ``Figure`` (or, for ``.attention-steps``, with
  raw LaTeX in Beamer/LaTeX and display math elsewhere), and copies the figure and its JSON data
  to ``figures-dir``.
* :func:`finalize` removes the filter's state from the document.

Run it as ``pandoc -F attnslides-filter`` or ``python -m filters``; tests call ``main(doc)``.
"""

from __future__ import annotations

import os
import re
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import panflute as pf

from filters import jobs as jobs_
from filters.cache import Cache, copy_atomic, key_for
from filters.errors import PREFIX, BlockError, Where
from filters.latex import steps_beamer, steps_equations
from filters.options import KINDS, parse_block, read_metadata

# Caption text with none of these characters is plain text: no need to ask pandoc to parse it.
_MARKDOWN = re.compile(r"[*_`$\\\[\]^~<>&]")
_LATEX_FORMATS = ("latex", "beamer")


@dataclass
class Block:
    """One live block, found and parsed in :func:`prepare`."""

    elem: pf.CodeBlock
    spec: object
    where: Where
    name: str  # file name (no extension) in figures-dir
    key: str = ""


def slugify(text: str) -> str:
    """``"Auto-atención"`` → ``"auto-atencion"``: a file name any tool accepts."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "slide"


def slide_level(doc: pf.Doc) -> int:
    """Pandoc's rule: the highest header level directly followed by content (or ``slide-level``)."""
    given = doc.get_metadata("slide-level", None)
    if given is not None:
        return int(given)
    blocks = list(doc.content)
    levels = [
        block.level
        for block, after in zip(blocks, blocks[1:] + [None])
        if isinstance(block, pf.Header) and after is not None and not isinstance(after, (pf.Header, pf.HorizontalRule))
    ]
    return min(levels, default=1)


def _deck_name(doc: pf.Doc) -> str:
    return os.environ.get("ATTNSLIDES_DECK") or doc.get_metadata("title", "(untitled deck)")


def _kind_of(elem: pf.CodeBlock) -> str | None:
    kinds = [c for c in elem.classes if c in KINDS]
    if len(kinds) > 1:
        raise BlockError(f"a block has one kind, this one has {', '.join('.' + k for k in kinds)}")
    return kinds[0] if kinds else None


def find_blocks(doc: pf.Doc) -> list[tuple[pf.CodeBlock, str, str]]:
    """Every live block with its kind and its slide's title, in document order."""
    level, title, found = slide_level(doc), "(before the first slide)", []

    def collect(elem, _doc):
        if isinstance(elem, pf.CodeBlock):
            kind = _kind_of(elem)
            if kind:
                found.append((elem, kind, title))

    for block in doc.content:
        if isinstance(block, pf.Header) and block.level <= level:
            title = pf.stringify(block).strip() or title
        block.walk(collect)
    return found


def prepare(doc: pf.Doc) -> None:
    deck = _deck_name(doc)
    try:
        settings, defaults = read_metadata(doc.get_metadata("attnslides", {}))
    except BlockError as exc:
        raise exc.at(Where(deck, "(metadata)", "attnslides:")) from None
    settings_device = os.environ.get("ATTNSLIDES_DEVICE") or settings.device
    latex = doc.format in _LATEX_FORMATS
    ext = "pdf" if latex else "svg" if doc.format in ("html", "html4", "html5", "revealjs", "slidy", "epub", "epub3") else "png"
    lang = settings.lang or ("es" if str(doc.get_metadata("lang", "en")).startswith("es") else "en")

    blocks, names = [], set()
    found = find_blocks(doc)
    for n, (elem, kind, title) in enumerate(found, start=1):
        label = f".{kind}" + (f" #{elem.identifier}" if elem.identifier else "") + f" (live block {n} of {len(found)})"
        where = Where(deck, title, label)
        attributes = dict(elem.attributes)
        try:
            spec = parse_block(kind, attributes, elem.text, defaults[kind])
        except BlockError as exc:
            raise exc.at(where) from None
        name = elem.identifier or f"{slugify(title)}-{kind}"
        base, i = name, 2
        while name in names:
            name, i = f"{base}-{i}", i + 1
        names.add(name)
        blocks.append(Block(elem, spec, where, name))

    cache = Cache(settings.cache_dir)
    family = "latex" if latex else doc.format
    misses = {}
    for block in blocks:
        # The worked example is text, not a picture: its entry holds data only.
        block_ext = ext if block.spec.kind != "attention-steps" else ("tex" if latex else "math")
        block.key = key_for(block.spec, fmt=f"{family}/{block_ext}", device=settings_device)
        if cache.entry(block.key) is None and block.key not in misses:
            misses[block.key] = jobs_.Job(block.spec, block.key, str(cache.root), block_ext, settings_device, lang, block.where)
    if misses:
        jobs_.run_all(list(misses.values()), workers=settings.jobs, progress=_progress)

    figures_dir = Path(settings.figures_dir)
    doc.attnslides = {
        "blocks": {id(b.elem): b for b in blocks},
        "cache": cache,
        "figures_dir": figures_dir,
        "ext": ext,
        "latex": latex,
    }
    _captions(doc, blocks)
    figures = [figures_dir / f"{b.name}.{suffix}" for b in blocks
               for suffix in (("json",) if b.spec.kind == "attention-steps" else ("json", ext))]
    cache.record(deck, family, [b.key for b in blocks], figures)


def _progress(done: int, total: int, job, seconds: float) -> None:
    print(f"{PREFIX} figure {done}/{total} «{job.where.slide}» {job.where.block.split(' (')[0]} {seconds:.1f} s",
          file=sys.stderr, flush=True)


def _captions(doc: pf.Doc, blocks: list[Block]) -> None:
    """Parse every caption that has Markdown in it with one pandoc call; plain ones directly."""
    texts = {b.spec.caption for b in blocks if getattr(b.spec, "caption", "")}
    rich = sorted(t for t in texts if _MARKDOWN.search(t))
    parsed = {t: [pf.Str(w) if w else pf.Space() for w in _words(t)] for t in texts if t not in rich}
    if rich:
        import pypandoc

        separator = "\n\n<!-- attnslides -->\n\n"
        paras = pf.convert_text(separator.join(" ".join(t.split()) for t in rich), input_format="markdown",
                                pandoc_path=pypandoc.get_pandoc_path())
        paras = [p for p in paras if not isinstance(p, pf.RawBlock)]
        for text, para in zip(rich, paras):
            parsed[text] = list(para.content)
    doc.attnslides["captions"] = parsed


def _words(text: str) -> list[str]:
    """``"a b"`` → ``["a", "", "b"]``: words, with ``""`` standing for a space."""
    out = []
    for word in text.split():
        out += [word, ""]
    return out[:-1]


def action(elem, doc):
    state = getattr(doc, "attnslides", None)
    if state is None or not isinstance(elem, pf.CodeBlock) or id(elem) not in state["blocks"]:
        return None
    block: Block = state["blocks"][id(elem)]
    folder, data = jobs_.load(state["cache"], block.key)
    figures_dir: Path = state["figures_dir"]
    copy_atomic(folder / "data.json", figures_dir / f"{block.name}.json")
    spec = block.spec
    if spec.kind == "attention-steps":
        if state["latex"]:
            return pf.RawBlock(steps_beamer(data, precision=spec.precision, overlays=spec.overlays), format="latex")
        steps = [pf.Para(pf.Math(eq, format="DisplayMath")) for eq in steps_equations(data, spec.precision)]
        return pf.Div(*[pf.Div(s, classes=["fragment"]) if spec.overlays else s for s in steps],
                      identifier=elem.identifier, classes=["attention-steps"])
    image_path = figures_dir / f"{block.name}.{state['ext']}"
    copy_atomic(folder / f"figure.{state['ext']}", image_path)
    caption = state["captions"].get(spec.caption, [])
    alt = _words(spec.alt) if spec.alt else []
    image = pf.Image(*[pf.Str(w) if w else pf.Space() for w in alt], url=image_path.as_posix(),
                     attributes={"height": spec.height})
    extra = [c for c in elem.classes if c != spec.kind]
    return pf.Figure(pf.Plain(image), caption=pf.Caption(pf.Plain(*caption)) if caption else None,
                     identifier=elem.identifier, classes=extra)


def finalize(doc: pf.Doc) -> None:
    if hasattr(doc, "attnslides"):
        del doc.attnslides


def main(doc: pf.Doc | None = None):
    """Run the filter. With ``doc`` (tests), return the filtered document and let a
    :class:`BlockError` propagate; as a Pandoc filter, print it on stderr and exit with status 1."""
    if doc is not None:
        return pf.run_filter(action, prepare=prepare, finalize=finalize, doc=doc)
    try:
        pf.run_filter(action, prepare=prepare, finalize=finalize)
    except BlockError as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
