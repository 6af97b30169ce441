"""The Pandoc filter: live blocks in, figures and worked examples out (panflute's skeleton).

* :func:`prepare` reads the deck's settings once (:mod:`filters.pandoc.settings`), finds and parses
  every live block (:mod:`filters.pandoc.parse`; a bad option stops the build before anything is
  drawn), looks each one up in the cache, and computes the misses (:mod:`filters.workers`).
* :func:`action` replaces each live block with its ``Figure`` (or, for a text kind, with the
  elements its ``write`` gives: raw LaTeX in Beamer, math elsewhere), and copies the figure and its
  JSON data to ``<figures-dir>/<deck>/`` (:mod:`filters.pandoc.output`).
* :func:`finalize` checks the whole document (:mod:`filters.pandoc.checks`: its pictures again,
  now that captions and ``slide.text`` are in place) and removes the
  filter's state from it.

``attnslides build`` calls :func:`filter_json` with its :class:`BuildSettings`; ``pandoc -F
attnslides-filter`` and ``python -m filters`` run :func:`main`, which reads them from the
environment; tests call ``main(doc)`` or ``main(doc, settings)``.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import panflute as pf

from filters.cache.keys import key_for
from filters.cache.store import Cache, project_of
from filters.errors import PREFIX, BlockError, BlockErrors, tracebacks_wanted
from filters.pandoc import checks
from filters.pandoc.document import as_document, deck_settings, pin_to_top, plain_text
from filters.pandoc.output import BlockOutput, code_at_size, markdown, picture_in_the_project
from filters.pandoc.parse import LiveBlock, parse_all
from filters.pandoc.settings import BuildSettings, DeckSettings
from filters.util.files import copy_atomic
from filters.util.names import file_name, slugify
from filters.workers.jobs import Job, compute_all

# Kinds whose content grows overlay by overlay on a Beamer slide (each step takes room once shown):
# their frames start at the top (filters.pandoc.document.pin_to_top).
GROWING = frozenset({"attention-steps"})


@dataclass
class DocState:
    """What the filter keeps on the document between :func:`prepare` and :func:`finalize`."""

    settings: DeckSettings
    blocks: dict[int, LiveBlock] = field(default_factory=dict)  # by id() of the code block element
    cache: Cache | None = None
    figures_dir: Path = Path(".")  # <figures-dir>/<deck>
    lang: str = "en"
    markdown: dict[str, list[pf.Inline]] = field(default_factory=dict)  # Markdown text → inlines, read once
    # id() of each picture the filter placed itself (a figure it wrote under figures_dir, which may be
    # an output folder outside the project that the lecturer chose): the final check leaves them be
    produced: set[int] = field(default_factory=set)

    @property
    def fmt(self) -> str:  # pandoc's output format
        return self.settings.fmt

    @property
    def relative_to(self) -> Path:  # image paths are written relative to the output document's folder
        return self.settings.build.output_dir


def prepare(doc: pf.Doc) -> None:
    build: BuildSettings = getattr(doc, "attnslides_build", None) or BuildSettings.from_environment()
    checks.check_pandoc(build.pandoc_version)
    as_document(doc)
    settings = deck_settings(doc, build)
    doc.attnslides = state = DocState(settings)
    checks.check_files(doc, settings)  # before anything is computed: nothing half-written
    checks.check_folders(settings)
    others: list[tuple[str, str]] = []
    blocks, errors = parse_all(doc, settings, others)
    errors = [*settings.errors, *errors]
    state.cache = Cache(settings.meta.cache_dir)
    checks.warn_unknown_classes(others, settings.deck, state.cache)
    if not errors and not blocks:
        return  # a deck without live blocks costs nothing and writes nothing
    try:
        state.lang = settings.meta.lang or checks.deck_language(doc, settings.deck)
    except BlockError as exc:
        errors.append(exc)
    if errors:
        raise errors[0] if len(errors) == 1 else BlockErrors(errors, settings.deck)
    for block in blocks:  # options left to the deck's language: the cache key and captions see their value
        block.options = block.options.in_language(state.lang)
    _compute(blocks, state, checks.device(settings))
    _place(doc, blocks, state)


def _compute(blocks: list[LiveBlock], state: DocState, device: str) -> None:
    """Give each block its cache key, and compute those that miss (a ``.run`` block is not run when
    the build must not run the deck's code: it is marked ``skipped``)."""
    settings, cache, misses = state.settings, state.cache, {}
    home = _home(settings.build.deck, cache)
    for block in blocks:
        fmt = f"{settings.family}/{block.ext}" if block.ext else "text"  # a text kind's entry is data only
        block.key = key_for(block.kind, block.options, fmt=fmt, device=device, lang=state.lang,
                            pandoc=settings.build.pandoc_version, sources=cache.sources, home=home[1],
                            page=block.page(settings.page))
        if cache.entry(block.key) is not None or block.key in misses:
            continue
        if block.kind.executes and not settings.execute:
            block.skipped = True  # its code is shown instead: never run the deck's code when told not to
            continue
        misses[block.key] = Job.of(block.kind, block.options, key=block.key, cache_dir=str(cache.root), ext=block.ext,
                                   device=device, lang=state.lang, where=block.where, home=home[0],
                                   page=block.page(settings.page))
    if misses:
        compute_all(list(misses.values()), workers=settings.meta.jobs, cores=settings.build.cores,
                    progress=_progress, keep_going=settings.build.keep_going, deck=settings.deck)
    cache.sources.save()
    for block in blocks:
        if block.ext and not block.skipped:
            block.pictures = len(list(cache.entry(block.key).glob(f"figure-*.{block.ext}")))


def _home(deck: Path | None, cache: Cache) -> tuple[str, str]:
    """Where the deck's code runs: its folder (``""`` under ``pandoc -F`` without the deck's path:
    the build's folder), as an absolute path and as the cache key has it (relative to the project,
    so that a project moved or cloned keeps its cache)."""
    if deck is None or not Path(deck).is_file():
        return "", ""
    folder = Path(deck).resolve().parent
    return str(folder), os.path.relpath(folder, project_of(cache.root))


def _place(doc: pf.Doc, blocks: list[LiveBlock], state: DocState) -> None:
    """Where the deck's figures go, what the blocks' captions read as, and the deck's manifest."""
    settings = state.settings
    build = settings.build
    folder, identity, known = _figures_folder(doc, str(build.deck) if build.deck else settings.deck,
                                              settings.figures_root, state.cache, name=build.name)
    checks.check_folders(settings, folder)
    if not known:  # under `pandoc -F` two decks may share a title (or have none): names by content
        for block in blocks:
            block.name = f"{block.name}-{block.key[:8]}"
    state.blocks, state.figures_dir = {id(b.elem): b for b in blocks}, folder
    if state.fmt == "beamer":
        pin_to_top(doc, [b.elem for b in blocks if b.kind.name in GROWING])
    state.markdown = _captions(blocks, state.lang)
    state.cache.record(settings.deck, settings.family, [b.key for b in blocks],
                       [folder / f for b in blocks for f in b.files], identity=identity, folder=folder)


def _captions(blocks: list[LiveBlock], lang: str) -> dict:
    """Every caption read as Markdown (:func:`filters.pandoc.output.markdown`), by one pandoc; when
    pandoc runs past its limit on them, each block's alone, to name the block at fault."""
    shown = [b for b in blocks if not b.skipped]
    try:
        return markdown([text for b in shown for text in b.captions(lang)])
    except BlockError:
        for block in shown:
            try:
                markdown(block.captions(lang))
            except BlockError as exc:
                raise exc.at(block.where) from None
        raise


def action(elem, doc):
    state: DocState | None = getattr(doc, "attnslides", None)
    if isinstance(elem, pf.Image):
        if state is not None:
            picture_in_the_project(elem, state.settings)
        return None
    if state is None or not isinstance(elem, pf.CodeBlock) or id(elem) not in state.blocks:
        return None
    block = state.blocks[id(elem)]
    out = BlockOutput(block, state, None if block.skipped else state.cache.entry(block.key))
    if block.skipped:
        return block.kind.write_unrun(block.options, out)
    folder, data = state.cache.read(block.key)
    try:
        written = block.kind.write(data, block.options, out) if block.kind.write else out.figure(1)
    except BlockError as exc:  # e.g. more captions than figures: found only once the figures are known
        raise (exc if exc.where else exc.at(block.where)) from None
    copy_atomic(folder / "data.json", state.figures_dir / f"{block.name}.json")
    return written


def finalize(doc: pf.Doc) -> None:
    state: DocState | None = getattr(doc, "attnslides", None)
    if state is not None:
        # the final document: captions and slide.text in place (their pictures are the deck's)
        checks.check_pictures(doc, state.settings, produced=frozenset(state.produced))
        checks.check_code_width(doc, state.settings)
        code_at_size(doc, state.settings.meta.code_size)
        doc.attnslides_settings = state.settings  # what the build reads back (filter_json)
        del doc.attnslides


def _figures_folder(doc: pf.Doc, deck: str, root: Path, cache: Cache, *, name: str | None = None
                    ) -> tuple[Path, str, bool]:
    """The folder of this deck's figures, what tells this deck from another of the same name, and
    whether the deck's file is known (when it is not, the figures' file names carry their cache key).

    ``<figures-dir>/<deck's file name>`` (``transformers-1``; ``name`` when given: ``-o``'s, for a deck
    of several files) when the deck's path is known,
    ``<figures-dir>/<slug of its title>`` under ``pandoc -F``, or ``deck-<hash of its slide
    titles>`` for a deck without a title. When another deck's figures are already there (two
    ``deck.md`` in two folders, two decks of one title), a hash of this deck's path or title is
    added. Under ``pandoc -F`` the filter cannot tell two decks of one title (or of none) apart, so
    each file's name then ends with its cache key: two decks never write each other's files.
    """
    path = Path(deck)
    known = deck.endswith(".md") and path.is_file()
    if known:
        name, identity = name or file_name(path), str(path.resolve())
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


def _progress(done: int, total: int, job, seconds: float) -> None:
    print(f"{PREFIX} figure {done}/{total} «{job.where.slide}» {job.where.block.split(' (')[0]} {seconds:.1f} s",
          file=sys.stderr, flush=True)

def filter_json(ast_json: str, fmt: str, build: BuildSettings) -> tuple[str, DeckSettings]:
    """Run the filter in this process on a Pandoc JSON document for the output format ``fmt``, with
    the ``build``'s settings; return the filtered JSON and the deck's settings (read once, here).
    ``attnslides build`` and ``watch`` call this, sparing a Python process per build; ``pandoc -F
    attnslides-filter`` runs :func:`main`.

    Raises:
        BlockError: as :func:`main` with a document.
    """
    doc = pf.load(io.StringIO(ast_json))
    doc.format = fmt
    doc = main(doc, build)
    settings = doc.attnslides_settings
    del doc.attnslides_settings
    out = io.StringIO()
    pf.dump(doc, out)
    return out.getvalue(), settings


def main(doc: pf.Doc | None = None, settings: BuildSettings | None = None):
    """Run the filter. With ``doc`` (tests, :func:`filter_json`), return the filtered document and let
    a :class:`BlockError` propagate; as a Pandoc filter, print it on stderr and exit with status 1.
    ``settings``: the build's (:class:`BuildSettings`); without them they are read from the
    environment, as pandoc starts the filter."""
    if doc is not None:
        doc.attnslides_build = settings
        try:
            return pf.run_filter(action, prepare=prepare, finalize=finalize, doc=doc)
        finally:
            del doc.attnslides_build
    settings = BuildSettings.from_environment()
    try:
        doc = pf.load()
        doc.attnslides_build = settings
        doc = pf.run_filter(action, prepare=prepare, finalize=finalize, doc=doc)
        del doc.attnslides_build
        doc.__dict__.pop("attnslides_settings", None)
        pf.dump(doc)
    except KeyboardInterrupt:  # unfinished figures stay in .tmp- folders, which no build trusts
        sys.exit(130)
    except Exception as exc:
        print(explain(exc, settings.deck), file=sys.stderr)
        sys.exit(1)


def explain(exc: Exception, deck: str | Path | None = None) -> str:
    """What the lecturer reads for an exception out of the filter (``deck``: the deck it ran on): a :class:`BlockError` as it is;
    a folder that cannot be written (read-only, a full disk, a file in the way) as such; anything
    else as a bug of ours, not the deck's, with how to see more."""
    if isinstance(exc, BlockError):
        return str(exc)
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return (f"{PREFIX} {deck or 'the deck'}: cannot write{where}: "
                f"{exc.strerror or exc} (check the figures-dir and cache-dir folders and the free space)")
    import traceback

    return (f"{PREFIX} internal error, not the deck's fault: {type(exc).__name__}: {exc}"
            + ("\n" + "".join(traceback.format_exception(exc)) if tracebacks_wanted() else
               " (ATTNSLIDES_TRACEBACK=1 or `attnslides build --traceback` shows where)"))


if __name__ == "__main__":
    main()
