"""Deck → what a lecturer hands out: pandoc reads the deck, our filter runs, pandoc writes the output.

* ``beamer``: ``build/<deck>.tex``, then LaTeX makes ``build/<deck>.pdf`` (:mod:`filters.pipeline.pdf`,
  :mod:`filters.latex`: a precompiled preamble, and only the passes a change needs: an edit of one
  sentence costs one pass, an unchanged deck none).
* ``latex``: the same as a handout, ``build/<deck>-handout.pdf`` (an article: every step of a
  worked example at once, figures at their size on the slide).
* ``revealjs``: a folder, ``build/<deck>-html/``, with ``index.html``, its figures, and the parts of
  reveal.js and KaTeX it uses (installed from npm by ``make setup``): it opens with no network. A
  folder and not one self-contained HTML file, because reveal.js's speaker view loads its page at
  run time, which a file of data: URIs cannot serve.
* ``docx``, ``pptx``: ``build/<deck>.docx`` / ``.pptx`` with PNG figures at 200 dpi.

:func:`build` reads the deck's file once and hands the filter a
:class:`filters.pandoc.settings.BuildSettings`; the filter hands back the deck's settings, read once
(the LaTeX engine, the overflow rule, the theme).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

from filters.errors import PREFIX
from filters.latex.runner import Session, clean_strays
from filters.pandoc.settings import BuildSettings, DeckSettings
from filters.pipeline import pandocargs
from filters.pipeline.errors import BuildError
from filters.pipeline.pandocargs import PandocOptions
from filters.pipeline.pdf import PREAMBLE, to_pdf
from filters.pipeline.reveal import reveal_assets
from filters.util import pandoc
from filters.util.confine import ALLOW_OPTION, OutsideProject, Project, check_metadata, deck_project, regular_file
from filters.util.files import WritesOutside, check_folder, drop_links, open_lock, write_atomic
from filters.util.names import file_name
from filters.util.pandoc import pandoc_version

__all__ = ["FORMATS", "BuildError", "build", "convert", "filter_command"]

def filter_command() -> str:
    """The filter executable beside this Python (the ``attnslides-filter`` console script)."""
    script = Path(sys.executable).with_name("attnslides-filter")
    if script.exists():
        return str(script)
    found = shutil.which("attnslides-filter")
    if not found:
        raise BuildError("the attnslides-filter command is not installed; run `make setup`")
    return found


def run_pandoc(args: list[str], *, stdin: str | None = None) -> str:
    """pandoc's output for ``args`` (``stdin``: its input), bounded in time and memory
    (:func:`filters.util.pandoc.run_pandoc`); its warnings go to stderr.

    Raises:
        BuildError: when it fails or runs past :data:`filters.util.pandoc.PANDOC_TIME_LIMIT_S`.
    """
    try:
        done = pandoc.run_pandoc(args, stdin=stdin)
    except pandoc.PandocTimeout as exc:
        what = f"reading {args[0]}" if stdin is None else "writing the output"
        raise BuildError(f"pandoc ran for more than {exc.limit:g} s {what} and was stopped: is there "
                         "text it struggles with, such as brackets nested many levels deep ([[[[…]]]])?") from None
    sys.stderr.write(done.stderr)  # pandoc's warnings
    if done.returncode != 0:
        raise BuildError(f"pandoc {' '.join(args)} failed (exit {done.returncode})")
    return done.stdout


# What `attnslides build --to` makes, and where.
FORMATS = {
    "beamer": "PDF slides (LaTeX Beamer): build/<deck>.pdf",
    "latex": "a handout to print, every step of a worked example at once (LaTeX article): build/<deck>-handout.pdf",
    "revealjs": "HTML slides that open offline (reveal.js, KaTeX): build/<deck>-html/index.html",
    "docx": "an editable Word document: build/<deck>.docx",
    "pptx": "editable PowerPoint slides: build/<deck>.pptx",
}


_BINARY = ("docx", "pptx")  # zip files: pandoc writes them itself


def convert(deck: Path, output: Path, *, build: BuildSettings, to: str = "beamer", pandoc_args=lambda settings: [],
            options: PandocOptions | None = None, more: tuple[Path, ...] = ()) -> tuple[bool, DeckSettings]:
    """Read ``deck`` (and the files ``more``, after it, as pandoc reads several inputs: one document)
    with pandoc, run the filter with the ``build``'s settings, write ``output`` with pandoc (a text
    output only if it changed).

    The three stages run one after another, as ``pandoc --filter`` would run them, but without a
    pandoc waiting in memory while the figures are drawn (a cold build's peak memory is the
    filter's alone), and the filter runs in this process (a warm build starts no Python). Its
    progress and errors reach stderr as they happen. ``pandoc_args(settings)`` gives pandoc's writer
    options from the deck's settings; ``options`` are the lecturer's own pandoc options
    (:mod:`filters.pipeline.pandocargs`).

    Returns:
        Whether the output changed, and the deck's settings (read once, by the filter): the LaTeX
        engine, the overflow rule and the theme.

    Raises:
        BuildError: when pandoc or the filter fails (the filter has then printed which slide,
            block and key are at fault).
    """
    from filters.pandoc.filter import explain, filter_json

    options = options or PandocOptions()
    inputs = [str(part) if part.is_absolute() else os.path.join(".", part) for part in (deck, *more)]  # ./-x.md: a file
    ast = run_pandoc([*inputs, *options.reading, "--to", "json", "--output", "-"])
    try:
        filtered, settings = filter_json(ast, to, build)
    except Exception as exc:  # the filter's own message; a KeyboardInterrupt goes on up
        print(explain(exc, deck), file=sys.stderr)
        raise BuildError(f"{deck} was not built", reported=True) from None
    args = ["--from", "json", "--standalone", "--to", to, *options.writing, *pandoc_args(settings)]
    if to in ("beamer", "latex"):  # our preamble (filters/latex/preamble.tex) after the deck's own
        if options.includes_header:  # the lecturer's -H already replaces header-includes, as pandoc does
            args += ["--include-in-header", str(PREAMBLE)]
        else:
            filtered = _with_header(filtered, PREAMBLE.read_text())
    folders = dict.fromkeys(str(part.resolve().parent) for part in (deck, *more))  # each part's pictures, from its folder
    resources = os.pathsep.join([str(output.parent), *folders, "."])
    output.parent.mkdir(parents=True, exist_ok=True)
    if to in _BINARY:  # its pictures are found from the output's folder, as their paths are written
        partial = output.with_name(f".{output.name}.partial")
        partial.unlink(missing_ok=True)  # a link there (a repository's) would have pandoc write through it
        try:
            run_pandoc([*args, "--resource-path", resources, "--output", str(partial)], stdin=filtered)
            os.replace(partial, output)
        finally:
            partial.unlink(missing_ok=True)
        return True, settings
    text = run_pandoc([*args, "--resource-path", resources, "--output", "-"], stdin=filtered)
    if output.is_file() and output.read_text() == text:
        return False, settings
    write_atomic(output, text.encode())
    return True, settings


def _with_header(ast_json: str, tex: str) -> str:
    """The document with ``tex`` added at the end of its ``header-includes`` metadata (a list
    made of it when it is one value). Not ``--include-in-header``: pandoc's ``-H`` replaces the
    deck's own ``header-includes``, which would vanish without a word."""
    doc = json.loads(ast_json)
    raw = {"t": "MetaBlocks", "c": [{"t": "RawBlock", "c": ["latex", tex]}]}
    given = doc["meta"].get("header-includes")
    if given is None:
        doc["meta"]["header-includes"] = {"t": "MetaList", "c": [raw]}
    elif given.get("t") == "MetaList":
        given["c"].append(raw)
    else:
        doc["meta"]["header-includes"] = {"t": "MetaList", "c": [given, raw]}
    return json.dumps(doc, ensure_ascii=False)


@contextlib.contextmanager
def deck_lock(out_dir: Path, deck: Path, name: str | None = None):
    """Hold ``out_dir``'s lock for ``deck`` (its ``name``, by default :func:`file_name`'s): two builds
    of one deck into one folder take turns, as their ``.tex``, LaTeX's files and the PDF are the same files."""
    import fcntl

    out_dir.mkdir(parents=True, exist_ok=True)
    with open(open_lock(out_dir / f".{name or file_name(deck)}.lock"), "rb") as lock:  # never truncated, no link followed
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"{PREFIX} {deck}: another build of it into {out_dir} is running; waiting for it", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def claim_name(out_dir: Path, deck: Path, name: str | None = None) -> None:
    """Make ``deck`` the one deck whose outputs in ``out_dir`` take its ``name`` (by default
    :func:`file_name`'s; a deck of several files: the first, named after ``-o``),
    recorded in ``out_dir/.<name>.deck``; called under :func:`deck_lock`. A deck deleted or
    renamed gives its name up.

    Raises:
        BuildError: when another deck file of the same project, still there, had that name: built
            one after the other, the two would overwrite each other's outputs (``Atención.md``
            written with é as one character and as e and an accent look the same, and both give
            ``Atencion``). A record naming a deck of another project is stale (a project copied
            whole, ``build/`` too: its record names the original) and is replaced.
    """
    import unicodedata

    stem = name or file_name(deck)
    record = out_dir / f".{stem}.deck"
    try:
        other = Path(os.fsdecode(record.read_bytes())) if not record.is_symlink() else None
    except OSError:
        other = None
    if other is not None and other.is_file() and not os.path.samefile(other, deck) \
            and deck_project(other) == deck_project(deck):
        if name and name != file_name(deck):
            why = f"-o names this deck {name}, the name that deck's file gives it"
        elif other.name == deck.name:
            why = "the two have one file name, in two folders"
        elif unicodedata.normalize("NFC", other.name) == unicodedata.normalize("NFC", deck.name):
            why = ("the two names differ only in how their accents are encoded (é as one character, or as e and an "
                   "accent: Unicode NFC and NFD), so they look the same")
        else:
            why = "an output's name keeps only ASCII letters, digits, '-' and '_' («Atención.md» gives Atencion)"
        raise BuildError(f"{deck}: its outputs, {out_dir}/{stem}.*, are those of another deck, {other}: {why}. "
                         "Rename one of the two, or build this one with another --out")
    if other != deck.resolve():
        write_atomic(record, os.fsencode(deck.resolve()))


def _latex_figures(deck: Path, out_dir: Path, to: str) -> Path | None:
    """Where a LaTeX build keeps its figures when the deck's own ``figures-dir`` would not do:
    built from a folder outside the deck's project, figures under it are on no path LaTeX reads
    (the deck's folder, its project and the output folder: :mod:`filters.latex.env`), so they go
    beside the output (``<out>/figures``). ``None``: the deck's setting."""
    if to not in ("beamer", "latex") or Path.cwd().resolve().is_relative_to(deck_project(Path(deck))):
        return None
    return Path(out_dir) / "figures"


def build(deck: Path, out_dir: Path = Path("build"), *, to: str = "beamer", device: str | None = None,
          execute: bool = True, pandoc_options: list[str] | tuple[str, ...] = (), session: Session | None = None,
          confine: bool = True, cores: int = 0, out_given: bool = False, keep_going: bool = False,
          more: tuple[Path, ...] = (), name: str | None = None) -> Path:
    """Build one deck into ``out_dir`` in the format ``to`` (one of :data:`FORMATS`). Returns what
    it wrote: the PDF, the reveal.js deck's ``index.html``, or the Word or PowerPoint file.
    ``pandoc_options``: the lecturer's own pandoc options (``-d defaults.yml``, ``-H``, ``-V``,
    ``--citeproc``, ``--pdf-engine`` …), passed on as :mod:`filters.pipeline.pandocargs` says, with those a
    deck's ``attnslides: {pandoc-defaults: file}`` names first. ``session``: a watch's
    :class:`filters.latex.runner.Session`. ``cores``: the cores it may keep busy (0: all).
    ``keep_going`` (``--keep-going``): a block that fails stops no other; every other block is
    computed and cached before the build stops with the failures. The deck's file is read once, here.

    A deck of several files (``attnslides build part1.md part2.md -o lecture.pdf``): ``more`` are
    read after ``deck``, as pandoc reads several inputs (one document, each file's metadata merged),
    and ``name`` (``-o``'s) names its outputs. The first file is the deck's: its folder (where ``.run``
    blocks run, where its pictures and metadata files are looked up first) and its project, which
    must hold the others too unless ``confine`` is off. A message names the file and line of a block.

    The trust boundary: ``execute=False`` (``--no-exec``) runs none of the deck's code (``.run``
    blocks, its defaults file's filters, Lua readers); ``confine`` (unless ``--allow-outside-files``)
    keeps every file the deck names, in its metadata, its defaults file and its pictures, inside its
    project (:mod:`filters.util.confine`). The lecturer's ``pandoc_options`` are theirs: never confined.
    Whatever ``confine`` says, the folders the build writes into lie in the deck's project once
    symbolic links are followed (:func:`filters.util.files.check_folder`), but ``out_dir`` when
    ``out_given`` (the lecturer's ``--out``), and no file is written through a link.

    Raises:
        BuildError: for a format that is not one of :data:`FORMATS`, for a file the deck names that
            is refused (naming the key and the file), and as the stages raise it.
    """
    if to not in FORMATS:
        raise BuildError(f"attnslides builds {', '.join(FORMATS)}; not {to!r}")
    _check_parts(deck, more, confine=confine)
    name = name or file_name(deck)
    try:
        _check_folders(deck, out_dir, to, out_given=out_given, name=name)
        with deck_lock(out_dir, deck, name):
            claim_name(out_dir, deck, name)
            drop_links(out_dir, name)  # LaTeX and pandoc would write through them
            clean_strays(out_dir, name)  # what a killed build of it left half-written
            text, parts = _read_parts((deck, *more))
            try:
                options, project = _options(deck, text, out_dir, list(pandoc_options), execute=execute,
                                            confine=confine, name=name)
            except (pandocargs.PandocOptionError, OutsideProject) as exc:
                raise BuildError(f"{' + '.join(map(str, (deck, *more)))}: {exc}") from None
            settings = BuildSettings(deck=deck, deck_text=text, device=device, execute=execute,
                                     pandoc_version=pandoc_version(), project=project, cores=cores,
                                     out_given=out_dir if out_given else None, keep_going=keep_going,
                                     name=name, parts=parts, figures_dir=_latex_figures(deck, out_dir, to))
            return _build(deck, out_dir, to=to, build=settings, options=options, session=session, more=more)
    except WritesOutside as exc:  # a link in the project out of it (build -> /elsewhere)
        raise BuildError(f"{deck}: {exc}") from None
    except OSError as exc:  # an output folder that is a file, read-only, on a full disk …
        where = f" {exc.filename}" if exc.filename else ""
        raise BuildError(f"{deck}: cannot write{where}: {exc.strerror or exc} (the output folder, --out, must be a "
                         "folder you can write, with free space)") from None


def _check_parts(deck: Path, more: tuple[Path, ...], *, confine: bool) -> None:
    """Refuse a file of the deck that is missing, or (``confine``) one of a deck of several that lies
    outside the first one's project (links followed): the deck's code and the files it names are
    confined to that one project.

    Raises:
        BuildError: naming the file (and the project, and the way out: ``--allow-outside-files``).
    """
    for part in (deck, *more):
        if not Path(part).is_file():
            raise BuildError(f"{part}: no such deck (moved or deleted?)")
    project = deck_project(deck)
    for part in more if confine else ():
        if not Path(part).resolve().is_relative_to(project):
            raise BuildError(f"{part}: outside the deck's project ({project}: the git repository of {deck}, else the "
                             f"folder you build from), and the files of one deck lie in one project: move it there, "
                             f"or build with {ALLOW_OPTION}")


def _read_parts(files: tuple[Path, ...]) -> tuple[str, tuple[tuple[str, int], ...]]:
    """The text of a deck's files read as one, each ending with a blank line (pandoc's rule for
    several inputs), and each file as messages name it with the line of that text it starts at."""
    if len(files) == 1:
        return files[0].read_text(encoding="utf-8", errors="replace"), ()
    text, parts = "", []
    for part in files:
        own = part.read_text(encoding="utf-8", errors="replace")
        parts.append((str(part), text.count("\n") + 1))
        text += own + ("" if own.endswith("\n") else "\n") + "\n"
    return text, tuple(parts)


def _check_folders(deck: Path, out_dir: Path, to: str, *, out_given: bool, name: str) -> None:
    """Refuse an output folder (unless the lecturer named it, ``out_given``), or a folder the build
    writes under it, that a symbolic link leads out of the deck's project.

    Raises:
        WritesOutside: naming the folder and the link.
    """
    project = deck_project(deck)
    within = (out_dir,) if out_given else ()
    folders = [] if out_given else [(out_dir, "the output folder")]
    folders += [(out_dir / "formats", "the folder of precompiled preambles")] if to in ("beamer", "latex") else []
    folders += [(out_dir / f"{name}-html", "the reveal.js folder")] if to == "revealjs" else []
    for folder, what in folders:
        check_folder(folder, project, what, within=within)


def _options(deck: Path, text: str, out_dir: Path, pandoc_options: list[str], *, execute: bool,
             confine: bool, name: str) -> tuple[PandocOptions, Project | None]:
    """The pandoc options of a build (:func:`pandocargs.split`), the deck's defaults file vetted
    first (:func:`pandocargs.vet_deck_defaults`), and the deck's project when files are confined to
    it (looking relative names up from the folders pandoc does: this one, the deck's, the output's
    and the defaults file's ``resource-path``).

    Raises:
        OutsideProject, PandocOptionError: naming the key and the file refused.
    """
    project = Project.of(deck, out_dir) if confine else None
    if project is not None:
        for match in _YAML_BLOCK.finditer(text):
            check_metadata(_yaml_map(match[1]), project)
    match = _YAML_BLOCK.match(text)  # the front matter, where the deck names its defaults file
    front = _yaml_map(match[1]) if match else {}
    named = front.get("attnslides", {}).get("pandoc-defaults") if isinstance(front.get("attnslides"), dict) else None
    defaults, folders = None, []
    if named:
        source, where = "the deck's metadata", deck.parent / str(named)
        if project is not None:
            project.check(str(where), "attnslides: pandoc-defaults", source=source)
        defaults = str(regular_file(where, "attnslides: pandoc-defaults", source=source))

    def vet(given: dict, path: str) -> dict:
        kept = pandocargs.vet_deck_defaults(given, path, project=project, execute=execute)
        paths = kept.get("resource-path") or []
        paths = paths.split(os.pathsep) if isinstance(paths, str) else paths
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise pandocargs.PandocOptionError(f"the pandoc defaults file {path}: resource-path: a folder or a list of "
                                               f"folders, not {paths!r}")
        folders.extend(Path(p) for p in paths)
        return kept

    stem = name
    deck_options = pandocargs.split_deck_defaults(defaults, out_dir=out_dir, stem=stem, vet=vet) if defaults else None
    options = pandocargs.split(pandoc_options, out_dir=out_dir, stem=stem, options=deck_options)
    return options, replace(project, bases=(*project.bases, *folders)) if project is not None else None


# A YAML metadata block, anywhere in the deck (pandoc merges them all): the files they name are
# checked before pandoc reads the deck, as citeproc reads them then.
_YAML_BLOCK = re.compile(r"(?:\A|\n[ \t]*\n)---[ \t]*\n(?![ \t]*\n)(.*?)\n(?:---|\.\.\.)[ \t]*(?=\n|\Z)", re.S)


def _yaml_map(text: str) -> dict:
    """A YAML metadata block of the deck as a map; ``{}`` when it is none (pandoc reports a block it
    cannot read, with the line)."""
    import yaml

    try:
        meta = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    return meta if isinstance(meta, dict) else {}


def _build(deck: Path, out_dir: Path, *, to: str, build: BuildSettings, options: PandocOptions,
           session: Session | None, more: tuple[Path, ...] = ()) -> Path:
    start, name = time.perf_counter(), build.name or file_name(deck)
    if to in ("beamer", "latex"):
        tex = out_dir / (name + (".tex" if to == "beamer" else "-handout.tex"))
        _, settings = convert(deck, tex, build=replace(build, output_dir=tex.parent), to=to, options=options,
                              more=more)
        # a handout is no slide: a line over the margin is worth a warning, not a failed build
        result = to_pdf(tex, deck=deck, overflow=settings.meta.overflow if to == "beamer" else "warn",
                        engine=options.pdf_engine or settings.pdf_engine, session=session, name=settings.deck)
    elif to == "revealjs":
        folder = out_dir / f"{name}-html"
        result = folder / "index.html"
        convert(deck, result, build=replace(build, output_dir=folder, figures_dir=folder / "figures"), to=to,
                pandoc_args=lambda settings: reveal_assets(folder, settings.theme), options=options, more=more)
    else:
        result = out_dir / f"{name}.{to}"
        convert(deck, result, build=replace(build, output_dir=result.parent), to=to, options=options, more=more)
    print(f"{PREFIX} {result} ({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return result
