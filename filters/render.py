"""Drawing, shared by the figure kinds: the deck's one style, a figure's scale on the slide, saving.

Plot helpers take an ``ax``, return the artists they drew, and take keyword-only options (the
matplotlib gallery's and seaborn's habit). No pyplot: each figure is a plain
:class:`matplotlib.figure.Figure`, so nothing global leaks between figures or processes. A kind's
own drawing (its ``draw``) lives in its file; :func:`render` draws any kind in the deck's style;
attention heatmaps are in :mod:`filters.heatmap`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from pathlib import Path

import matplotlib.style
import numpy as np
from matplotlib.figure import Figure

from filters import STYLE

# What a figure's sizes become on the slide. Beamer's text height on a 4:3 frame (128 × 96 mm) is
# 260.48 pt; a figure of height "72%" is drawn 0.72 × that high, whatever its own size.
SLIDE_TEXT_HEIGHT_PT = 260.48
_CM = 72.27 / 2.54  # TeX points per centimetre


def projected_scale(fig: Figure, height: str) -> float:
    """Slide points per figure point when ``fig`` is placed on a Beamer slide at ``height`` (``"72%"``
    of the text height, or a length such as ``"5cm"``): fonts of ``s`` points in the figure are
    ``s × projected_scale`` points on the slide."""
    value, unit = float(height.rstrip("%cmin pte")), height.lstrip("0123456789.")
    on_slide = {"%": value / 100 * SLIDE_TEXT_HEIGHT_PT, "cm": value * _CM, "mm": value * _CM / 10,
                "in": value * 72.27, "pt": value, "em": value * 11}[unit]
    return on_slide / (fig.get_figheight() * 72)


def render(kind, data, options, path: Path, *, lang: str = "es") -> Figure:
    """Draw ``kind``'s figure (a :class:`filters.kind.Kind`) from ``data`` in the deck's style, in
    ``lang``, and save it to ``path`` (format from its suffix). Returns the figure (for tests that
    read back its geometry)."""
    with matplotlib.style.context(STYLE):
        fig = kind.draw(data, options, kind.labels_for(lang))
        save(fig, path)
    return fig


# What must happen to a figure once it is drawn, before it is saved (a heatmap sizes its labels
# for the room the whole figure leaves it). A figure holds no place for our own records.
_BEFORE_SAVE: weakref.WeakKeyDictionary[Figure, list[Callable[[Figure], None]]] = weakref.WeakKeyDictionary()


def before_save(fig: Figure, step: Callable[[Figure], None]) -> None:
    """Run ``step(fig)`` once, when ``fig`` is saved by :func:`save` (a helper's last touch)."""
    steps = _BEFORE_SAVE.setdefault(fig, [])
    if step not in steps:
        steps.append(step)


def save(fig: Figure, path: Path) -> None:
    """Save ``fig`` (after its :func:`before_save` steps); PDF and SVG without a creation date, so
    the same numbers give the same bytes."""
    for step in _BEFORE_SAVE.pop(fig, []):
        step(fig)
    fmt = Path(path).suffix.lstrip(".")
    metadata = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}.get(fmt)
    fig.savefig(path, format=fmt, metadata=metadata)


def warm_up() -> None:
    """Draw and save one tiny figure in memory: loads fonts, mathtext and the PDF/SVG back ends once,
    so that a worker forked afterwards starts warm (see :mod:`filters.warm`)."""
    import io

    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(1, 1), layout="constrained")
        ax = fig.add_subplot()
        ax.imshow(np.zeros((2, 2)), cmap="viridis")
        ax.set_title("$P$ ó")
        fig.colorbar(ax.images[0], ax=ax)
        for fmt in ("pdf", "png"):
            fig.savefig(io.BytesIO(), format=fmt)
