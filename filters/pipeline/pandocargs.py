"""The lecturer's own pandoc options (``attnslides build deck.md -- -d defaults.yml -H h.tex …``),
split between the two pandoc runs of a build.

A build runs pandoc twice, as ``pandoc --filter`` would: it reads the deck into JSON (the filter
runs on that), then writes the output from the filtered JSON. Every option goes to the reading run
(filters, ``--citeproc``, metadata and defaults act there, once); the writing run gets them all
but those that would act a second time on the already processed document (filters, citeproc and
its bibliography, metadata, the reader's format). A defaults file (``-d``) is split the same way,
into two files in the output folder; its relative paths stay relative to the folder the build runs
from, as pandoc reads them. ``--pdf-engine`` (or ``pdf-engine:`` in a defaults file) chooses the
LaTeX engine. Options that would move or re-format the output (``-o``, ``-t``) are refused:
``--out`` and ``--to`` are attnslides' own.

A defaults file the deck names (``attnslides: {pandoc-defaults: FILE}``) is the deck's, not the
lecturer's: :func:`vet_deck_defaults` confines every file it names to the deck's project
(:mod:`filters.util.confine`), refuses the keys that write files or embed any file, and under
``--no-exec`` runs none of its filters, Lua readers or data folder.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from filters.errors import PREFIX
from filters.util.confine import ALLOW_OPTION, OutsideProject, Project, check_metadata, names_in
from filters.util.files import write_atomic

# Options that take a value (pandoc 3's --help); a short option stands for its long name.
_SHORT = {"-d": "--defaults", "-F": "--filter", "-L": "--lua-filter", "-M": "--metadata", "-f": "--from",
          "-r": "--from", "-o": "--output", "-t": "--to", "-w": "--to", "-V": "--variable",
          "-H": "--include-in-header", "-B": "--include-before-body", "-A": "--include-after-body",
          "-T": "--title-prefix", "-c": "--css", "-D": "--print-default-template", "-C": "--citeproc",
          "-s": "--standalone", "-i": "--incremental", "-N": "--number-sections"}
_LONG_VALUED = {
    "--defaults", "--filter", "--lua-filter", "--metadata", "--metadata-file", "--from", "--read", "--output",
    "--to", "--write", "--bibliography", "--csl", "--citation-abbreviations", "--pdf-engine", "--pdf-engine-opt",
    "--variable", "--include-in-header", "--include-before-body", "--include-after-body", "--title-prefix", "--css",
    "--print-default-template", "--slide-level", "--template", "--resource-path", "--toc-depth", "--tab-stop",
    "--dpi", "--wrap", "--columns", "--highlight-style", "--syntax-definition", "--top-level-division",
    "--number-offset", "--eol", "--reference-doc", "--data-dir", "--extract-media", "--shift-heading-level-by",
    "--indented-code-classes", "--default-image-extension", "--email-obfuscation", "--id-prefix",
    "--reference-location", "--markdown-headings", "--ipynb-output", "--track-changes", "--abbreviations", "--log",
    "--request-header", "--chunk-template", "--split-level", "--epub-cover-image", "--epub-title-page",
    "--epub-metadata", "--epub-embed-font", "--epub-subdirectory", "--lang", "--variable-json",
}
# Acting on the document once, when it is read: not again when the filtered document is written.
_READING_ONLY = {"--filter", "--lua-filter", "--metadata", "--metadata-file", "--from", "--read", "--bibliography",
                 "--csl", "--citation-abbreviations", "--citeproc", "--file-scope"}
_REFUSED = {"--output": "--out", "--to": "--to", "--write": "--to"}
# The same, as keys of a defaults file.
_READING_KEYS = {"filters", "citeproc", "bibliography", "csl", "citation-abbreviations", "metadata",
                 "metadata-file", "metadata-files", "from", "reader", "file-scope", "input-file", "input-files"}
_DROPPED_KEYS = {"to", "writer", "output-file", "pdf-engine", "pdf-engine-opts", "pdf-engine-opt"}


# A deck's own defaults file: keys naming files (or, for resource-path and data-dir, folders) pandoc
# reads, confined to the deck's project; keys that write files, or make pandoc read every file and
# URL an HTML output names, refused; keys that run code, not run under --no-exec.
_FILE_KEYS = ("template", "metadata-file", "metadata-files", "include-in-header", "include-before-body",
              "include-after-body", "abbreviations", "reference-doc", "epub-metadata", "epub-fonts",
              "epub-cover-image", "syntax-definition", "syntax-definitions", "csl", "bibliography",
              "citation-abbreviations", "input-file", "input-files", "resource-path", "data-dir")
_WRITING_KEYS = {"output-file": "writes a file", "log-file": "writes a file", "extract-media": "writes files",
                 "embed-resources": "embeds any file the output names",
                 "self-contained": "embeds any file the output names",
                 "defaults": "names another defaults file, unchecked"}
_STYLE_KEYS = ("highlight-style", "syntax-highlighting")  # a style's name, or a .theme file
# The readers a deck's defaults file may choose: Markdown's, which include no file by themselves.
MARKDOWN_READERS = ("markdown", "markdown_strict", "markdown_phpextra", "markdown_mmd", "commonmark", "commonmark_x",
                    "gfm")


class PandocOptionError(ValueError):
    """An option attnslides cannot pass on (its message says why and what to use instead)."""


@dataclass
class PandocOptions:
    """The lecturer's options as each pandoc run takes them, and the LaTeX engine they name."""

    reading: list[str] = field(default_factory=list)
    writing: list[str] = field(default_factory=list)
    pdf_engine: str | None = None
    includes_header: bool = False  # -H (or include-in-header:), which replaces the deck's header-includes


def _engine(value: str) -> str:
    name = Path(str(value)).name
    if name not in ("pdflatex", "lualatex", "xelatex"):
        raise PandocOptionError(f"--pdf-engine {value}: attnslides runs pdflatex, lualatex or xelatex")
    return name


def _expand(value, path: str, *, environment: bool):
    """``value`` (a defaults file's map, as YAML gives it) with ``${...}`` in its strings expanded as
    pandoc expands them: ``${.}`` is the file's own folder (expanded as the file is copied); with
    ``environment``, ``${USERDATA}`` and every other ``${NAME}`` too, an unset one to nothing
    (pandoc's ``resolveVars``: the name is all up to the next ``}``), so that what is checked is
    what pandoc reads. Expanded after YAML has read the file, as pandoc does (a ``\x24{`` escape
    is a ``${`` too)."""
    if isinstance(value, dict):
        return {k: _expand(v, path, environment=environment) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, path, environment=environment) for v in value]
    if not isinstance(value, str):
        return value
    folder = str(Path(path).resolve().parent)
    if not environment:
        return value.replace("${.}", folder)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    values = {**os.environ, ".": folder, "USERDATA": str(Path(data) / "pandoc")}
    return re.sub(r"\$\{([^}]*)\}", lambda m: values.get(m[1], ""), value)


def vet_deck_defaults(given: dict, path: str, *, project: Project | None, execute: bool) -> dict:
    """What of the deck's own defaults file ``given`` (read from ``path``) the build passes on.

    With a ``project`` (the build confines files): every file or folder a key of
    :data:`_FILE_KEYS` (or a filter, a Lua reader, a ``.theme`` style, the ``metadata``) names must
    lie inside it, the keys of :data:`_WRITING_KEYS` are refused, and a reader (``from``,
    ``reader``) that is not one of :data:`MARKDOWN_READERS` (or a Lua reader) is refused: org, rst
    and LaTeX readers include files themselves. Without ``execute``
    (``--no-exec``): its filters are left out (pandoc's own ``citeproc`` stays), with a warning on
    stderr, and a Lua reader or a data folder (which holds Lua code pandoc runs) is refused.

    Raises:
        PandocOptionError: naming the file, the key and why.
    """
    source = f"the deck's pandoc defaults file {path}"
    try:
        given = dict(given) if execute else _without_filters(given, source)
        if not execute and given.get("data-dir"):
            raise OutsideProject(f"{source} gives data-dir: {given['data-dir']}; a data folder holds Lua code pandoc "
                                 "runs, and --no-exec runs none of the deck's code")
        key = "from" if given.get("from") else "reader"
        reader = str(given.get(key) or "").partition("+")[0]
        if reader.endswith(".lua") and not execute:
            raise OutsideProject(f"{source} gives the reader {reader}, Lua code; --no-exec runs none of the deck's code")
        if project is not None and reader and not reader.endswith(".lua") \
                and re.split(r"[+-]", reader, maxsplit=1)[0] not in MARKDOWN_READERS:
            raise OutsideProject(f"{source} gives {key}: {given[key]}; a deck is read as Markdown "
                                 f"({', '.join(MARKDOWN_READERS)}, with +/- extensions): other readers (org's "
                                 "#+INCLUDE, rst's include, LaTeX's \\input) read any file themselves, unchecked; "
                                 f"pass {ALLOW_OPTION} to allow it")
        if project is not None:
            _confine_defaults(given, project, source, reader)
    except OutsideProject as exc:
        raise PandocOptionError(str(exc)) from None
    return given


def _without_filters(given: dict, source: str) -> dict:
    """``given`` without its filters but pandoc's own ``citeproc`` (``--no-exec``), said on stderr."""
    filters = given.get("filters") or []
    filters = filters if isinstance(filters, list) else [filters]
    kept = [f for f in filters if f == "citeproc" or (isinstance(f, dict) and f.get("type") == "citeproc")]
    left = [f.get("path", f) if isinstance(f, dict) else f for f in filters if f not in kept]
    if left:
        print(f"{PREFIX} warning: --no-exec: {source} names the filters {', '.join(map(str, left))}; they are not "
              "run (the deck's code never runs under --no-exec)", file=sys.stderr)
    return {**{k: v for k, v in given.items() if k != "filters"}, **({"filters": kept} if kept else {})}


def _confine_defaults(given: dict, project: Project, source: str, reader: str) -> None:
    for key, why in _WRITING_KEYS.items():
        if given.get(key) not in (None, False, "", []):
            raise OutsideProject(f"{source} gives {key}, which {why}: a deck may not ask for that (a lecturer "
                                 "may, on the command line after '--')")
    for key in _FILE_KEYS:
        value = given.get(key)
        for name in (value.split(os.pathsep) if key == "resource-path" and isinstance(value, str) else
                     names_in(value)):
            project.check(name, key, source=source)
    for name in names_in(given.get("css")):  # a link, or a file a self-contained output embeds
        project.check(name, "css", urls=True, source=source)
    for key in _STYLE_KEYS:
        style = given.get(key)
        if isinstance(style, str) and (style.endswith(".theme") or "/" in style):
            project.check(style, key, source=source)
    filters = given.get("filters") or []
    for entry in filters if isinstance(filters, list) else [filters]:
        name = entry.get("path") if isinstance(entry, dict) else entry
        if isinstance(name, str) and name != "citeproc":
            project.check(name, "filters", source=source)
    if reader.endswith(".lua"):
        project.check(reader, "from", source=source)
    _confine_metadata(given, project, source)


def _confine_metadata(given: dict, project: Project, source: str) -> None:
    """The files the metadata of a defaults file names, given or in its metadata files."""
    check_metadata(given.get("metadata"), project, source=f"{source} (metadata:)")
    for name in names_in(given.get("metadata-file")) + names_in(given.get("metadata-files")):
        try:
            check_metadata(yaml.safe_load(Path(name).read_text()), project, source=f"{source} (metadata-file {name})")
        except (OSError, yaml.YAMLError):
            pass  # pandoc reports it


def _split_defaults(path: str, out_dir: Path, stem: str, options: PandocOptions, *,
                    vet=None) -> None:
    """``vet``: for the deck's own defaults file, a function of its map that gives what is passed on
    (:func:`vet_deck_defaults`)."""
    try:
        given = _expand(yaml.safe_load(Path(path).read_text()) or {}, path, environment=vet is not None)
    except (OSError, yaml.YAMLError) as exc:
        raise PandocOptionError(f"the pandoc defaults file {path} cannot be read: {exc}") from None
    if not isinstance(given, dict):
        raise PandocOptionError(f"the pandoc defaults file {path} is not a map of options")
    if vet is not None:
        given = vet(given)
    if given.get("pdf-engine"):
        options.pdf_engine = _engine(given["pdf-engine"])
    options.includes_header = options.includes_header or bool(given.get("include-in-header"))
    out_dir.mkdir(parents=True, exist_ok=True)
    for role, keep in (("reading", lambda k: k not in _DROPPED_KEYS),
                       ("writing", lambda k: k not in _DROPPED_KEYS and k not in _READING_KEYS)):
        count = getattr(options, role).count("--defaults")  # the deck's file and the lecturer's: one file each
        written = out_dir / f"{stem}.{role}-defaults{f'-{count + 1}' if count else ''}.yaml"
        text = yaml.safe_dump({k: v for k, v in given.items() if keep(k)}, allow_unicode=True)
        write_atomic(written, text.encode())  # a link at its name is replaced, never written through
        getattr(options, role).extend(["--defaults", str(written)])


def split_deck_defaults(path: str, *, out_dir: Path, stem: str, vet) -> PandocOptions:
    """The options of the deck's own defaults file ``path``, which ``vet`` (:func:`vet_deck_defaults`,
    given the map and the path) checks first; the lecturer's follow (:func:`split`'s ``options``).

    Raises:
        PandocOptionError: for a file it cannot read, or what ``vet`` refuses.
    """
    options = PandocOptions()
    _split_defaults(path, out_dir, stem, options, vet=lambda given: vet(given, path))
    return options


def split(args: list[str], *, out_dir: Path, stem: str, options: PandocOptions | None = None) -> PandocOptions:
    """Split the lecturer's pandoc options ``args`` between the reading and the writing run, after
    ``options`` (the deck's own, :func:`split_deck_defaults`).

    Raises:
        PandocOptionError: for ``-o``/``-t`` (attnslides' ``--out``/``--to``), an input file, an
            engine attnslides does not run, or a defaults file it cannot read.
    """
    options = options or PandocOptions()
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-") or arg == "-":
            raise PandocOptionError(f"{arg}: give pandoc's options after '--', and the decks before it")
        if arg.startswith("--"):
            name, _, inline = arg.partition("=")
        else:  # -Vkey=value, -V key=value
            name, inline = _SHORT.get(arg[:2], arg[:2]), arg[2:]
        valued = name in _LONG_VALUED
        value = None
        if valued:
            if inline:
                value = inline
            elif i + 1 < len(args):
                value, i = args[i + 1], i + 1
            else:
                raise PandocOptionError(f"{arg} needs a value")
        i += 1
        if name in _REFUSED:
            raise PandocOptionError(f"{arg}: attnslides chooses the output itself: use its {_REFUSED[name]} option")
        if name == "--pdf-engine":
            options.pdf_engine = _engine(value)
            continue
        if name == "--pdf-engine-opt":
            continue
        if name == "--defaults":
            _split_defaults(value, out_dir, stem, options)
            continue
        options.includes_header = options.includes_header or name == "--include-in-header"
        given = [name, value] if valued else [arg]
        options.reading += given
        if name not in _READING_ONLY:
            options.writing += given
    return options
