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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

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


def _split_defaults(path: str, out_dir: Path, stem: str, options: PandocOptions) -> None:
    try:  # ${.} is the defaults file's own folder (pandoc's rule): expanded here, as the file is copied
        text = Path(path).read_text().replace("${.}", str(Path(path).resolve().parent))
        given = yaml.safe_load(text) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise PandocOptionError(f"the pandoc defaults file {path} cannot be read: {exc}") from None
    if not isinstance(given, dict):
        raise PandocOptionError(f"the pandoc defaults file {path} is not a map of options")
    if given.get("pdf-engine"):
        options.pdf_engine = _engine(given["pdf-engine"])
    options.includes_header = options.includes_header or bool(given.get("include-in-header"))
    out_dir.mkdir(parents=True, exist_ok=True)
    for role, keep in (("reading", lambda k: k not in _DROPPED_KEYS),
                       ("writing", lambda k: k not in _DROPPED_KEYS and k not in _READING_KEYS)):
        written = out_dir / f"{stem}.{role}-defaults.yaml"
        written.write_text(yaml.safe_dump({k: v for k, v in given.items() if keep(k)}, allow_unicode=True))
        getattr(options, role).extend(["--defaults", str(written)])


def split(args: list[str], *, out_dir: Path, stem: str) -> PandocOptions:
    """Split the lecturer's pandoc options ``args`` between the reading and the writing run.

    Raises:
        PandocOptionError: for ``-o``/``-t`` (attnslides' ``--out``/``--to``), an input file, an
            engine attnslides does not run, or a defaults file it cannot read.
    """
    options = PandocOptions()
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
