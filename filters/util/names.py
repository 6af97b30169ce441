"""Names every tool reads: a deck's output name and a slide's file name."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path


def file_name(deck: Path | str) -> str:
    """The name a deck's outputs and figure folder take: its file's name without ``.md``, made a name
    every tool reads (LaTeX, in paranoid mode, refuses a leading dot; ``#``, ``%``, ``^``, spaces
    break its file names; a leading ``-`` reads as an option): ``"Clase 1 (Atención).md"`` →
    ``"Clase-1-Atencion"``."""
    text = unicodedata.normalize("NFKD", Path(deck).stem).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9_+-]+", "-", text).strip(".-_") or "deck"


def slugify(text: str) -> str:
    """``"Auto-atención"`` → ``"auto-atencion"``: a file name any tool accepts."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "slide"
