"""A cache entry: what one block leaves once it is computed, and the one function that makes it.

An entry is a folder::

    data.json              the numbers the block shows, and their inputs (its kind's TypedDict)
    sha256.json            the SHA-256 of each file, written as it is published (checked on every read)
    figure-1.pdf|svg|png   its pictures, numbered from 1 (kinds with pictures)
    figure-2.pdf|svg|png   …
    depends.json           .run blocks that read files of the project: each one's path (relative to
                           the project) and SHA-256 when the block ran; the entry is trusted only
                           while they are unchanged (filters.cache.store)

:func:`produce` is the only code between a kind and its entry, so the cache key of every kind
covers this module and what it imports (see :func:`filters.cache.keys.key_for`).
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from pathlib import Path

from filters.blocks.page import DEFAULT_PAGE, Page
from filters.errors import BlockError

# What an entry holds and how its files are named; raise it when that changes, so that no build
# reads an entry of another layout (the cache key holds it: filters.cache.keys).
LAYOUT = 3  # 3: each entry records the SHA-256 of its files (sha256.json)
# The files a .run block read, with their SHA-256 (filters.figures.sandbox writes it).
DEPENDS = "depends.json"
# The most data one block may leave beside its figure, in bytes of JSON.
MAX_DATA_BYTES = 8 * 2**20


def produce(kind, options, folder: Path, *, ext: str, device: str, lang: str, home: Path | None = None,
            project: Path | None = None, page: Page = DEFAULT_PAGE) -> dict:
    """Compute one block of ``kind`` (a :class:`filters.kind.Kind`) and write its entry into
    ``folder``: ``data.json`` and, for a kind with pictures, ``figure-1.<ext>``, ``figure-2.<ext>`` ….
    ``home`` (the deck's folder) and ``project`` are for a kind with ``make``: a ``.run`` block
    runs in ``home`` and records the files of ``project`` it reads. Figures are drawn at the size
    they will have in the text area ``page`` of the deck's frames.

    Returns:
        The data.

    Raises:
        BlockError: when the data would be larger than :data:`MAX_DATA_BYTES`, or when a figure has
            a character none of its fonts has (it would show as an empty box).
    """
    options = options.in_language(lang)  # an option that follows the deck's language (the filter did it already)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)  # each missing glyph, not only the first of a run
        if kind.make is not None:
            data = kind.make(options, folder, ext=ext, device=device, lang=lang, home=home, project=project,
                             page=page)
        else:
            data = kind.compute(options, device)
            if kind.output == "figure":
                from filters.figures.render import render

                render(kind, data, options, folder / f"figure-1.{ext}", lang=lang, page=page)
    _check_glyphs(caught, options)
    nan = _first_nan(data)
    if nan is not None:
        raise BlockError(f"its numbers include nan (at {nan}): a number that is no number cannot go on a slide; "
                         "check the inputs (an overflow, 0/0, inf − inf)")
    text = json.dumps(data, ensure_ascii=False, indent=1)
    if len(text) > MAX_DATA_BYTES:
        raise BlockError(f"its data would be {len(text) / 2**20:.0f} MB of JSON, more than {MAX_DATA_BYTES // 2**20} MB: "
                         "show fewer numbers (or keep fewer in slide.data)")
    (folder / "data.json").write_text(text)
    return data


# matplotlib's words when no font of the list has a character: "Glyph 4608 (\N{ETHIOPIC SYLLABLE SA})
# missing from font(s) DejaVu Sans, Noto Sans CJK JP, Symbola."
_MISSING_GLYPH = re.compile(r"Glyph (\d+) .*missing from (?:current )?font")


def _check_glyphs(caught: list[warnings.WarningMessage], options) -> None:
    """Stop at a character no font of the figure has, naming it and the option that holds it; other
    warnings are shown as they would have been."""
    missing = []
    for warning in caught:
        match = _MISSING_GLYPH.search(str(warning.message))
        if match is None:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
        elif chr(int(match[1])) not in missing:
            missing.append(chr(int(match[1])))
    if not missing:
        return
    from filters.figures import available_fallback_fonts

    names = ", ".join(f"«{c}» (U+{ord(c):04X})" for c in missing)
    key = next((f.name for f in dataclasses.fields(options)
                if any(c in str(getattr(options, f.name)) for c in missing)), None)
    fonts = ", ".join(["DejaVu Sans", *available_fallback_fonts()])
    them = "it" if len(missing) == 1 else "them"
    raise BlockError(f"{names} would show as empty boxes in the figure: no font here has {them} ({fonts}); "
                     f"install a font that has {them} (Debian's fonts-noto-* packages), or write the text without {them}",
                     key=key)


def _first_nan(value, path: str = "data") -> str | None:
    """Where the first NaN of ``value`` (the block's data) is, or ``None``. (±inf may stand: a
    causal mask's scores are −∞, as the slide shows them.)"""
    if isinstance(value, float):
        return path if value != value else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    return next((found for key, item in items if (found := _first_nan(item, f"{path}[{key!r}]")) is not None), None)
