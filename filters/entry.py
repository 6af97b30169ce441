"""A cache entry: what one block leaves once it is computed, and the one function that makes it.

An entry is a folder::

    data.json              the numbers the block shows, and their inputs (its kind's TypedDict)
    figure-1.pdf|svg|png   its pictures, numbered from 1 (kinds with pictures)
    figure-2.pdf|svg|png   …

:func:`produce` is the only code between a kind and its entry, so the cache key of every kind
covers this module and what it imports (see :func:`filters.cache.key_for`).
"""

from __future__ import annotations

import json
from pathlib import Path

# What an entry holds and how its files are named; raise it when that changes, so that no build
# reads an entry of another layout.
LAYOUT = 2


def produce(kind, options, folder: Path, *, ext: str, device: str, lang: str) -> dict:
    """Compute one block of ``kind`` (a :class:`filters.kind.Kind`) and write its entry into
    ``folder``: ``data.json`` and, for a kind with pictures, ``figure-1.<ext>``, ``figure-2.<ext>`` ….

    Returns:
        The data.
    """
    if kind.make is not None:
        data = kind.make(options, folder, ext=ext, device=device, lang=lang)
    else:
        data = kind.compute(options, device)
        if kind.output == "figure":
            from filters.render import render

            render(kind, data, options, folder / f"figure-1.{ext}", lang=lang)
    (folder / "data.json").write_text(json.dumps(data, ensure_ascii=False, indent=1))
    return data
