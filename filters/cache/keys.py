"""The key of a cache entry: a hash of exactly what changes a block's picture or data.

* the block's kind and its options that change the figure (caption, alt text and id excluded);
* the source of the code the kind really uses: its own file, :mod:`filters.figures.entry` (which
  runs it and saves its pictures) and, followed through their imports, the shared and engine
  modules they import with the packages that hold them — found by reading the imports, so nobody
  keeps a list by hand (:mod:`filters.cache.sources`, which also says what text for people is
  left out) — and the data files the kind names (``Kind.files``);
* the layout of an entry (:data:`filters.figures.entry.LAYOUT`);
* for figures: the deck's style file and the matplotlibrc in force (a user's ``matplotlibrc`` or
  ``$MATPLOTLIBRC`` changes the pictures), and the fallback fonts installed;
* the versions of Python, torch, numpy, matplotlib and pandoc, the output format, the language of
  the labels (figures) and the device class;
* for a kind that runs the deck's code (``.run``), the deck's folder, where it runs. The files
  such code reads are known only once it has run: the entry records them
  (:data:`filters.figures.entry.DEPENDS`), and the store trusts it only while they are unchanged.

Computing a key imports neither torch nor matplotlib.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from engine.device import resolve
from filters.blocks.options import figure_options
from filters.blocks.page import DEFAULT_PAGE, Page
from filters.cache.sources import _IN_MEMORY, Sources, module_file
from filters.figures import STYLE, available_fallback_fonts
from filters.figures.entry import LAYOUT
from filters.util.files import file_sha256


def matplotlibrc() -> str:
    """sha256 of the matplotlibrc that matplotlib will read, or ``"default"`` for its own.

    The search follows ``matplotlib.matplotlib_fname()``: ``./matplotlibrc``, ``$MATPLOTLIBRC``
    (a file, or a folder holding one), then the configuration folder (``$MPLCONFIGDIR``, else
    ``$XDG_CONFIG_HOME/matplotlib`` or ``~/.config/matplotlib`` on Linux, ``~/.matplotlib``
    elsewhere); last, matplotlib's own defaults, which its version in the key stands for. Written
    out because importing matplotlib to ask costs about 0.15 s, on every build whose figures are
    all cached. Our style file (``filters/figures/attnslides.mplstyle``) is applied on top of it.
    """
    candidates = [Path("matplotlibrc")]
    if "MATPLOTLIBRC" in os.environ:
        candidates += [Path(os.environ["MATPLOTLIBRC"]), Path(os.environ["MATPLOTLIBRC"]) / "matplotlibrc"]
    if os.environ.get("MPLCONFIGDIR"):
        candidates.append(Path(os.environ["MPLCONFIGDIR"]) / "matplotlibrc")
    elif sys.platform.startswith(("linux", "freebsd")):
        xdg = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
        candidates.append(Path(xdg) / "matplotlib" / "matplotlibrc")
    else:
        candidates.append(Path.home() / ".matplotlib" / "matplotlibrc")
    for path in candidates:
        if path.is_file():
            return file_sha256(path)
    return "default"




@functools.cache
def versions(pandoc: str) -> dict[str, str]:
    """Versions of Python and of the libraries that compute or draw, read from package metadata
    (no import), and ``pandoc``'s (the one that read the deck)."""
    found = {"python": platform.python_version()}
    for package in ("torch", "numpy", "matplotlib"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "absent"
    found["pandoc"] = pandoc
    return found


def key_for(kind, options, *, fmt: str, device: str, pandoc: str, lang: str = "en",
            sources: Sources | None = None, home: str = "", page: Page = DEFAULT_PAGE) -> str:
    """The cache key of one block: 20 hex digits of a sha256.

    Args:
        kind: the block's :class:`filters.blocks.kind.Kind`.
        options: its parsed options.
        fmt: the output family and file type, e.g. ``"latex/pdf"`` or ``"html/svg"``; ``"text"``
            for a text kind, whose entry holds data only.
        device: the device setting (``cpu``, ``cuda``, ``mps``, ``auto``).
        pandoc: the version of the pandoc that read the deck.
        lang: the language of the figure's labels (``es``, ``en``).
        page: the text area of the deck's frames, which its figures are drawn for.
        sources: where module digests are remembered (a cache's :attr:`Cache.sources`).
        home: the deck's folder, relative to the project: a kind that runs the deck's code runs it
            there (the same block beside two decks reads two ``datos.csv``); other kinds ignore it.
    """
    sources = sources or _IN_MEMORY
    payload = {
        "kind": kind.name,
        "lang": lang if kind.output != "text" else "",  # a text kind's entry is data, the same in every language
        "options": figure_options(options),
        "sources": {name: sources.digest(name) for name in sources.closure(kind.module, "filters.figures.entry")},
        "files": {name: file_sha256(Path(module_file(kind.module)).parent / name) for name in kind.files},
        "layout": LAYOUT,
        "versions": versions(pandoc),
        "format": fmt,
        "device": resolve(device),
    }
    if kind.executes:
        payload["home"] = home
    if kind.output != "text":
        payload["style"] = file_sha256(STYLE)
        payload["fonts"] = available_fallback_fonts()
        payload["matplotlibrc"] = matplotlibrc()
        payload["page"] = [page.text_width, page.text_height, page.height_43]
    text = json.dumps(payload, sort_keys=True, default=list, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:20]
