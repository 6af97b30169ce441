"""A reveal.js deck that opens offline: the parts of reveal.js and KaTeX it loads, copied into its
folder (installed from npm by ``make setup``), and our stylesheet, ``reveal.css``."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from filters.pipeline.errors import BuildError
from filters.util.files import check_folder, write_atomic


def web_modules() -> Path:
    """The ``node_modules`` folder that holds reveal.js and KaTeX (``make setup`` installs them from
    npm): ``$ATTNSLIDES_NODE_MODULES``, else the one in the project's folder, beside ``filters/``.

    Raises:
        BuildError: when they are not installed.
    """
    folder = Path(os.environ.get("ATTNSLIDES_NODE_MODULES") or Path(__file__).resolve().parents[2] / "node_modules")
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
            if src.is_file() and (dst.is_symlink() or not dst.is_file() or (dst.stat().st_size, dst.stat().st_mtime_ns)
                                  != (src.stat().st_size, src.stat().st_mtime_ns)):
                check_folder(dst.parent, folder, "the reveal.js folder")  # no link in it leads out
                write_atomic(dst, src.read_bytes())  # a link at its name replaced, never written through
                shutil.copystat(src, dst)
    theme_css = folder / "reveal.js" / "dist" / "theme" / f"{name}.css"
    # several themes @import web fonts: offline they would be requests that fail; their fallbacks stay
    text = theme_css.read_text()
    if _REMOTE_IMPORT.search(text):
        write_atomic(theme_css, _REMOTE_IMPORT.sub("", text).encode())
    return ["--katex=katex/", "--variable", "revealjs-url=reveal.js", "--variable", f"theme={name}",
            "--css", REVEAL_CSS.name]
