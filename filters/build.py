"""Deck → what a lecturer hands out: pandoc reads the deck, our filter runs, pandoc writes the output.

* ``beamer``: ``build/<deck>.tex``, then LaTeX makes ``build/<deck>.pdf`` (:mod:`filters.texrun`:
  a precompiled preamble, and only the passes a change needs: an edit of one sentence costs one
  pass, an unchanged deck none).
* ``latex``: the same as a handout, ``build/<deck>-handout.pdf`` (an article: every step of a
  worked example at once, figures at their size on the slide).
* ``revealjs``: a folder, ``build/<deck>-html/``, with ``index.html``, its figures, and the parts of
  reveal.js and KaTeX it uses (installed from npm by ``make setup``): it opens with no network. A
  folder and not one self-contained HTML file, because reveal.js's speaker view loads its page at
  run time, which a file of data: URIs cannot serve.
* ``docx``, ``pptx``: ``build/<deck>.docx`` / ``.pptx`` with PNG figures at 200 dpi.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from filters import pandocargs, texrun
from filters.cache import pandoc_version, write_atomic
from filters.errors import PREFIX
from filters.filter import file_name
from filters.pandocargs import PandocOptions


class BuildError(RuntimeError):
    """pandoc or LaTeX failed; the message holds what they said. ``reported``: the filter has
    already printed the reason on stderr."""

    def __init__(self, message: str, *, reported: bool = False, listed: bool = False):
        super().__init__(message)
        self.reported, self.listed = reported, listed  # listed: the message's lines carry the prefix


def pandoc_path() -> str:
    """The pandoc shipped in ``pypandoc-binary`` (pandoc 3.x) — never whichever pandoc is on PATH."""
    import pypandoc

    return pypandoc.get_pandoc_path()


def filter_command() -> str:
    """The filter executable beside this Python (the ``attnslides-filter`` console script)."""
    script = Path(sys.executable).with_name("attnslides-filter")
    if script.exists():
        return str(script)
    found = shutil.which("attnslides-filter")
    if not found:
        raise BuildError("the attnslides-filter command is not installed; run `make setup`")
    return found


# pandoc reading deeply nested brackets ([[[[…]]]]) takes minutes and gigabytes; no deck needs that.
PANDOC_TIME_LIMIT_S = 120.0


def _pandoc(args: list[str], *, stdin: str | None = None) -> str:
    try:
        done = subprocess.run([pandoc_path(), *args], input=stdin, capture_output=True, text=True,
                              timeout=PANDOC_TIME_LIMIT_S)
    except subprocess.TimeoutExpired:
        what = f"reading {args[0]}" if stdin is None else "writing the output"
        raise BuildError(f"pandoc ran for more than {PANDOC_TIME_LIMIT_S:g} s {what} and was stopped: is there "
                         "text it struggles with, such as brackets nested many levels deep ([[[[…]]]])?") from None
    sys.stderr.write(done.stderr)  # pandoc's warnings
    if done.returncode != 0:
        raise BuildError(f"pandoc {' '.join(args)} failed (exit {done.returncode})")
    return done.stdout


# Beyond Latin, pdflatex sets these (pandoc's template, inputenc): anything else asks for LuaLaTeX.
_PDFLATEX_SETS = set("→×…–—“”‘’‚„‖€°·•†‡™«»¿¡§¶©®")
# pdflatex cannot build it, lualatex can: a character it has no font for, or a package of the
# Unicode engines (fontspec in the deck's header-includes).
_UNICODE_ERROR = re.compile(r"Unicode character .* not set up for use with LaTeX|"
                            r"fontspec package requires either XeTeX|cannot-use-pdftex")
PREAMBLE = Path(__file__).with_name("preamble.tex")


# fontspec loaded by the deck (header-includes): pandoc's template loads it only for XeTeX and LuaTeX.
_FONTSPEC = re.compile(r"^\s*\\usepackage(?:\[[^\]]*\])?\{fontspec\}", re.M)


def needs_unicode_engine(tex: str) -> bool:
    """Whether ``tex`` has characters pdflatex cannot set (Chinese, emoji, Greek, ≤ …), or the deck
    loads ``fontspec``, which pdflatex cannot run."""
    return any(ord(c) > 0x24F and c not in _PDFLATEX_SETS for c in tex) or bool(_FONTSPEC.search(tex))


# What `attnslides build --to` makes, and where.
FORMATS = {
    "beamer": "PDF slides (LaTeX Beamer): build/<deck>.pdf",
    "latex": "a handout to print, every step of a worked example at once (LaTeX article): build/<deck>-handout.pdf",
    "revealjs": "HTML slides that open offline (reveal.js, KaTeX): build/<deck>-html/index.html",
    "docx": "an editable Word document: build/<deck>.docx",
    "pptx": "editable PowerPoint slides: build/<deck>.pptx",
}
_BINARY = ("docx", "pptx")  # zip files: pandoc writes them itself


def _meta(ast_json: str, *path: str) -> str | None:
    """A plain-text metadata value of a pandoc JSON document (``"attnslides", "overflow"``, or
    ``"theme"``), or ``None``."""
    node = {"t": "MetaMap", "c": json.loads(ast_json).get("meta", {})}
    for key in path:
        node = node.get("c", {}).get(key) if node.get("t") == "MetaMap" else None
        if node is None:
            return None
    if node["t"] in ("MetaString", "MetaBool"):
        return str(node["c"])
    if node["t"] == "MetaInlines":
        return "".join(i.get("c", " ") if i["t"] == "Str" else " " for i in node["c"]).strip()
    return None


def convert(deck: Path, output: Path, *, to: str = "beamer", device: str | None = None, execute: bool = True,
            figures_dir: Path | None = None, pandoc_args=lambda ast_json: [],
            options: PandocOptions | None = None) -> dict:
    """Read ``deck`` with pandoc, run the filter, write ``output`` with pandoc (a text output only
    if it changed).

    The three stages run one after another, as ``pandoc --filter`` would run them, but without a
    pandoc waiting in memory while the figures are drawn (a cold build's peak memory is the
    filter's alone), and the filter runs in this process (a warm build starts no Python). Its
    progress and errors reach stderr as they happen.
    Figure paths are written relative to ``output``'s folder; ``figures_dir`` overrides the deck's
    ``figures-dir``; ``pandoc_args(filtered_json)`` gives pandoc's writer options; ``options`` are
    the lecturer's own pandoc options (:mod:`filters.pandocargs`).

    Returns:
        ``{"changed": bool, "overflow": "error" | "warn", "pdf-engine": …}``: whether the output
        changed, and the deck's settings that LaTeX's run needs.

    Raises:
        BuildError: when pandoc or the filter fails (the filter has then printed which slide,
            block and key are at fault).
    """
    from filters.filter import explain, filter_json

    env = {"ATTNSLIDES_DECK": str(deck), "ATTNSLIDES_OUTPUT_DIR": str(output.parent),
           "PANDOC_VERSION": pandoc_version(), "ATTNSLIDES_FIGURES_DIR": str(figures_dir or ""),
           "ATTNSLIDES_DEVICE": device or "", "ATTNSLIDES_EXECUTE": "1" if execute else "0"}
    options = options or PandocOptions()
    ast = _pandoc([str(deck) if deck.is_absolute() else os.path.join(".", deck),  # ./-x.md: a file, not an option
                   *options.reading, "--to", "json", "--output", "-"])
    try:
        filtered = filter_json(ast, to, env)
    except Exception as exc:  # the filter's own message; a KeyboardInterrupt goes on up
        print(explain(exc), file=sys.stderr)
        raise BuildError(f"{deck} was not built", reported=True) from None
    settings = {"overflow": _meta(filtered, "attnslides", "overflow") or "error",
                "pdf-engine": options.pdf_engine or _meta(filtered, "attnslides", "pdf-engine")
                or _meta(filtered, "pdf-engine") or "auto"}
    args = ["--from", "json", "--standalone", "--to", to, *options.writing, *pandoc_args(filtered)]
    if to in ("beamer", "latex"):  # our preamble (filters/preamble.tex) after the deck's own
        if options.includes_header:  # the lecturer's -H already replaces header-includes, as pandoc does
            args += ["--include-in-header", str(PREAMBLE)]
        else:
            filtered = _with_header(filtered, PREAMBLE.read_text())
    resources = os.pathsep.join([str(output.parent), str(deck.resolve().parent), "."])
    output.parent.mkdir(parents=True, exist_ok=True)
    if to in _BINARY:  # its pictures are found from the output's folder, as their paths are written
        partial = output.with_name(f".{output.name}.partial")
        try:
            _pandoc([*args, "--resource-path", resources, "--output", str(partial)], stdin=filtered)
            os.replace(partial, output)
        finally:
            partial.unlink(missing_ok=True)
        return {"changed": True, **settings}
    text = _pandoc([*args, "--resource-path", resources, "--output", "-"], stdin=filtered)
    if output.is_file() and output.read_text() == text:
        return {"changed": False, **settings}
    write_atomic(output, text.encode())
    return {"changed": True, **settings}


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


def _latex(tex: Path, engine: str, *, deck: Path | None, fresh: bool = False):
    try:
        return texrun.run(tex, engine, deck=deck, fresh=fresh)
    except texrun.LatexTimeout as exc:
        raise BuildError(f"{deck or tex}: {exc}") from None


def to_pdf(tex: Path, *, deck: Path | None = None, overflow: str = "error", engine: str = "auto") -> Path:
    """LaTeX ``tex`` (:mod:`filters.texrun`), in the ``.tex``'s own folder (figure paths are relative to it), then
    read LaTeX's log back: a frame whose content does not fit (an overfull box of more than 2 pt) is
    named, by its slide's title, and stops the build unless ``overflow="warn"``.

    ``engine="auto"`` takes pdflatex, or lualatex when the text has characters pdflatex cannot set
    (and when pdflatex says so, once).

    Passes run only as the change needs them (none for an unchanged deck), from a precompiled
    preamble; a later build never trusts a run that did not finish (:func:`filters.texrun.run`).

    Raises:
        BuildError: with the slide of LaTeX's error and the end of its log when it fails; or naming
            every frame that overflows, and every character no font had (with its slides).
    """
    from filters import texlog

    text = tex.read_text()
    chosen = engine == "auto"
    if chosen:
        engine = "lualatex" if needs_unicode_engine(text) else "pdflatex"
    if not shutil.which(engine):
        how = ("install Debian's texlive-xetex (sudo apt-get install texlive-xetex; `make setup` leaves it out, few "
               "decks need it), or build with --pdf-engine=lualatex") if engine == "xelatex" else "run `make setup`"
        raise BuildError(f"{deck or tex}: this deck is built with {engine}, which is not installed: {how}")
    log, done, text = _latex(tex, engine, deck=deck)
    if done.returncode != 0 and chosen and engine == "pdflatex" and _UNICODE_ERROR.search(log):
        print(f"{PREFIX} {deck or tex}: the deck needs a Unicode engine (characters pdflatex cannot set, or "
              "fontspec); building with lualatex", file=sys.stderr)
        engine = "lualatex"
        log, done, text = _latex(tex, engine, deck=deck, fresh=True)
    if done.returncode != 0:
        tail = (log or done.stdout).splitlines()[-25:]
        where = ""
        if engine != "pdflatex" and not shutil.which(engine):
            package = {"lualatex": "texlive-luatex", "xelatex": "texlive-xetex"}.get(engine, engine)
            where = (f"{deck or tex}: this deck needs {engine}, which is not installed: run `make setup`, or install "
                     f"Debian's {package}\n")
        for message, frame in texlog.errors(log, text, tex.name)[:1]:
            slide = texlog.plain_title(frame.title) if frame else "(outside any frame: the preamble)"
            where = f"{deck or tex}, slide «{slide}»: LaTeX: {message}\n"
        raise BuildError(f"{where}LaTeX ({engine}) failed on {tex}; the end of its log:\n" + "\n".join(tail))
    name = deck or tex
    problems = [f"{name}, slide «{texlog.plain_title(o.frame.title) if o.frame else '?'}»: "
                f"{'its content is' if o.box == 'v' else 'a line is'} {o.points:.1f} pt too "
                f"{'tall for the frame' if o.box == 'v' else 'wide for the text'}"
                for o in texlog.overflows(log, text)]
    if problems and overflow == "warn":
        for problem in problems:
            print(f"{PREFIX} warning: {problem}", file=sys.stderr)
    elif problems:
        raise BuildError("\n".join(f"{PREFIX} {p}" for p in problems) + f"\n{PREFIX} the PDF was written, but "
                         "something is off its slide: make a figure smaller (height=…), shorten its caption or the "
                         "text, or split the frame; metadata 'attnslides: {overflow: warn}' only warns", listed=True)
    by_slides: dict[str, list[str]] = {}  # missing glyphs: never only a warning, the text is gone
    for char, frames in texlog.missing_characters(log, text):
        slides = ", ".join(f"«{texlog.plain_title(f.title)}»" for f in frames) or "(outside any frame)"
        by_slides.setdefault(slides, []).append(f"«{char}» (U+{ord(char):04X})")
    if by_slides:
        raise BuildError("\n".join(f"{PREFIX} {name}, slide {slides}: {', '.join(chars)} missing from the PDF: no font "
                                    f"{engine} used has a glyph for {'it' if len(chars) == 1 else 'them'}"
                                    for slides, chars in by_slides.items())
                         + f"\n{PREFIX} the PDF was written, but without those characters: write the text without them, or "
                         "add a font that has them to filters/preamble.tex", listed=True)
    return tex.with_suffix(".pdf")


@contextlib.contextmanager
def deck_lock(out_dir: Path, deck: Path):
    """Hold ``out_dir``'s lock for ``deck`` (its name): two builds of one deck into one folder take
    turns, as their ``.tex``, LaTeX's files and the PDF are the same files."""
    import fcntl

    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / f".{file_name(deck)}.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"{PREFIX} {deck}: another build of it into {out_dir} is running; waiting for it", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build(deck: Path, out_dir: Path = Path("build"), *, to: str = "beamer", device: str | None = None,
          execute: bool = True, pandoc_options: list[str] | tuple[str, ...] = ()) -> Path:
    """Build one deck into ``out_dir`` in the format ``to`` (one of :data:`FORMATS`). Returns what
    it wrote: the PDF, the reveal.js deck's ``index.html``, or the Word or PowerPoint file.
    ``pandoc_options``: the lecturer's own pandoc options (``-d defaults.yml``, ``-H``, ``-V``,
    ``--citeproc``, ``--pdf-engine`` …), passed on as :mod:`filters.pandocargs` says, with those a
    deck's ``attnslides: {pandoc-defaults: file}`` names first.

    Raises:
        BuildError: for a format that is not one of :data:`FORMATS`, and as the stages raise it.
    """
    if to not in FORMATS:
        raise BuildError(f"attnslides builds {', '.join(FORMATS)}; not {to!r}")
    if not Path(deck).is_file():
        raise BuildError(f"{deck}: no such deck (moved or deleted?)")
    try:
        with deck_lock(out_dir, deck):
            try:
                options = pandocargs.split([*_deck_defaults(deck), *pandoc_options], out_dir=out_dir,
                                           stem=file_name(deck))
            except pandocargs.PandocOptionError as exc:
                raise BuildError(f"{deck}: {exc}") from None
            return _build(deck, out_dir, to=to, device=device, execute=execute, options=options)
    except OSError as exc:  # an output folder that is a file, read-only, on a full disk …
        where = f" {exc.filename}" if exc.filename else ""
        raise BuildError(f"{deck}: cannot write{where}: {exc.strerror or exc} (the output folder, --out, must be a "
                         "folder you can write, with free space)") from None


def _deck_defaults(deck: Path) -> list[str]:
    """``-d FILE`` for a pandoc defaults file the deck's front matter names
    (``attnslides: {pandoc-defaults: FILE}``, relative to the deck's folder), else nothing."""
    import yaml

    match = re.match(r"---\s*\n(.*?)\n(?:---|\.\.\.)\s*\n", deck.read_text(errors="replace"), re.S)
    try:
        front = yaml.safe_load(match[1]) if match else None
    except yaml.YAMLError:
        return []  # pandoc reports it, with the line
    named = front.get("attnslides", {}).get("pandoc-defaults") if isinstance(front, dict) and \
        isinstance(front.get("attnslides"), dict) else None
    return ["--defaults", str(deck.parent / str(named))] if named else []


def _build(deck: Path, out_dir: Path, *, to: str, device: str | None, execute: bool,
           options: PandocOptions) -> Path:
    start = time.perf_counter()
    if to in ("beamer", "latex"):
        tex = out_dir / (file_name(deck) + (".tex" if to == "beamer" else "-handout.tex"))
        settings = convert(deck, tex, to=to, device=device, execute=execute, options=options)
        # a handout is no slide: a line over the margin is worth a warning, not a failed build
        result = to_pdf(tex, deck=deck, overflow=settings["overflow"] if to == "beamer" else "warn",
                        engine=settings["pdf-engine"])
    elif to == "revealjs":
        folder = out_dir / f"{file_name(deck)}-html"
        result = folder / "index.html"
        convert(deck, result, to=to, device=device, execute=execute, figures_dir=folder / "figures",
                pandoc_args=lambda ast_json: reveal_assets(folder, _meta(ast_json, "theme")), options=options)
    else:
        result = out_dir / f"{file_name(deck)}.{to}"
        convert(deck, result, to=to, device=device, execute=execute, options=options)
    print(f"{PREFIX} {result} ({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return result


def web_modules() -> Path:
    """The ``node_modules`` folder that holds reveal.js and KaTeX (``make setup`` installs them from
    npm): ``$ATTNSLIDES_NODE_MODULES``, else the one beside ``filters/``.

    Raises:
        BuildError: when they are not installed.
    """
    folder = Path(os.environ.get("ATTNSLIDES_NODE_MODULES") or Path(__file__).resolve().parent.parent / "node_modules")
    if not (folder / "reveal.js" / "dist" / "reveal.js").is_file() or not (folder / "katex" / "dist").is_dir():
        raise BuildError(f"reveal.js and KaTeX are not installed in {folder}: run `make setup` (it installs them "
                         "from npm, with Node from Debian when it is missing)")
    return folder


# What of reveal.js and KaTeX a deck loads (pandoc's reveal.js template): copied into its folder.
_REVEAL_FILES = ("dist/reset.css", "dist/reveal.css", "dist/reveal.js", "plugin/notes/notes.js",
                 "plugin/search/search.js", "plugin/zoom/zoom.js")
_KATEX_FILES = ("katex.min.js", "katex.min.css", "fonts")
DEFAULT_REVEAL_THEME = "white"
REVEAL_CSS = Path(__file__).with_name("reveal.css")  # titles, figures and captions sized as in Beamer
_REMOTE_IMPORT = re.compile(r"@import url\((?:https?:)?//[^)]*\);?")


def reveal_theme(theme: str | None, modules: Path) -> str:
    """The reveal.js theme for a deck's ``theme``: itself when reveal.js has it (``moon``), else
    (a Beamer theme such as ``Madrid``) :data:`DEFAULT_REVEAL_THEME`, light like Beamer's."""
    themes = {p.stem.lower(): p.stem for p in (modules / "reveal.js" / "dist" / "theme").glob("*.css")}
    return themes.get((theme or "").lower(), DEFAULT_REVEAL_THEME)


def reveal_assets(folder: Path, theme: str | None) -> list[str]:
    """Copy what a reveal.js deck in ``folder`` loads (reveal.js, its theme and plugins, KaTeX and
    its fonts) into it, where missing or changed, and return pandoc's options that point at them."""
    modules = web_modules()
    name = reveal_theme(theme, modules)
    files = [(modules / "reveal.js" / f, folder / "reveal.js" / f) for f in _REVEAL_FILES]
    files += [(modules / "reveal.js" / "dist" / "theme" / f"{name}.css", folder / "reveal.js" / "dist" / "theme" / f"{name}.css"),
              (modules / "reveal.js" / "dist" / "theme" / "fonts", folder / "reveal.js" / "dist" / "theme" / "fonts")]
    files += [(modules / "katex" / "dist" / f, folder / "katex" / f) for f in _KATEX_FILES]
    files.append((REVEAL_CSS, folder / REVEAL_CSS.name))
    for source, target in files:
        for src in sorted(source.rglob("*")) if source.is_dir() else [source]:
            dst = target / src.relative_to(source) if source.is_dir() else target
            if src.is_file() and (not dst.is_file() or (dst.stat().st_size, dst.stat().st_mtime_ns)
                                  != (src.stat().st_size, src.stat().st_mtime_ns)):
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
    theme_css = folder / "reveal.js" / "dist" / "theme" / f"{name}.css"
    # several themes @import web fonts: offline they would be requests that fail; their fallbacks stay
    text = theme_css.read_text()
    if _REMOTE_IMPORT.search(text):
        theme_css.write_text(_REMOTE_IMPORT.sub("", text))
    return ["--katex=katex/", "--variable", "revealjs-url=reveal.js", "--variable", f"theme={name}",
            "--css", REVEAL_CSS.name]
