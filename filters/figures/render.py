"""Drawing, shared by the figure kinds: the deck's one style, a figure's scale on the slide, saving.

Plot helpers take an ``ax``, return the artists they drew, and take keyword-only options (the
matplotlib gallery's and seaborn's habit). No pyplot: each figure is a plain
:class:`matplotlib.figure.Figure`, so nothing global leaks between figures or processes. A kind's
own drawing (its ``draw``) lives in its file; :func:`render` draws any kind in the deck's style;
attention heatmaps are in :mod:`filters.figures.heatmap`.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable
from pathlib import Path

import matplotlib.style
import numpy as np
from matplotlib.figure import Figure

from filters.blocks.parsers import slide_points
from filters.figures import FALLBACK_FONTS, STYLE, available_fallback_fonts

# The height on the slide each kind's figure size (its figsize) is designed for: drawn for another
# height, a figure is scaled so that its text keeps the style's size on the slide.
DESIGN_HEIGHT = "72%"


def projected_scale(fig: Figure, height: str) -> float:
    """Slide points per figure point when ``fig`` is placed on a Beamer slide at ``height`` (``"72%"``
    of the text height, or a length such as ``"5cm"``): fonts of ``s`` points in the figure are
    ``s × projected_scale`` points on the slide."""
    return slide_points(height) / (fig.get_figheight() * 72)


def size_for(figsize: tuple[float, float], height: str) -> tuple[float, float]:
    """A figure size (inches) designed for :data:`DESIGN_HEIGHT`, for a figure shown at ``height``:
    scaled with the height (between 0.6× and 1.25×), so that its text keeps its size on the slide."""
    factor = min(1.25, max(0.6, slide_points(height) / slide_points(DESIGN_HEIGHT)))
    return figsize[0] * factor, figsize[1] * factor


def slide_figure(figsize: tuple[float, float], height: str, *, layout: str = "constrained") -> Figure:
    """A new figure of ``figsize`` inches as designed for :data:`DESIGN_HEIGHT`, sized for ``height``
    on the slide (:func:`size_for`); constrained layout, or ``layout="none"`` for a figure that
    places its axes itself."""
    return Figure(figsize=size_for(figsize, height), layout=layout)


@contextlib.contextmanager
def deck_style():
    """The deck's one style (``filters/figures/attnslides.mplstyle``), with the installed fallback fonts after
    DejaVu Sans, so that any script or emoji in a label is drawn (matplotlib takes each missing
    glyph from the next font of the list)."""
    from matplotlib import font_manager

    fallbacks = available_fallback_fonts()
    known = {font.name for font in font_manager.fontManager.ttflist}
    for name in fallbacks:
        if name not in known:  # installed after matplotlib built its font list
            font_manager.fontManager.addfont(str(FALLBACK_FONTS[name]))
    with matplotlib.style.context(STYLE), matplotlib.rc_context({"font.family": ["DejaVu Sans", *fallbacks]}):
        yield


def render(kind, data, options, path: Path, *, lang: str = "es") -> Figure:
    """Draw ``kind``'s figure (a :class:`filters.kind.Kind`) from ``data`` in the deck's style, in
    ``lang``, and save it to ``path`` (format from its suffix). Returns the figure (for tests that
    read back its geometry)."""
    with deck_style():
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


def thin_tick_labels(ax, axis: str = "x") -> None:
    """Hide every tick label of ``axis`` that would overlap the last one kept, left to right (on a
    log axis, 1024 and 2048 run together): call it once the figure has its final size (from a
    :func:`before_save` step)."""
    ax.figure.draw_without_rendering()
    kept = None
    for label in getattr(ax, f"get_{axis}ticklabels")():
        if not label.get_visible() or not label.get_text():
            continue
        box = label.get_window_extent().expanded(1.15, 1.0)
        if kept is not None and box.overlaps(kept):
            label.set_visible(False)
        else:
            kept = box


def warm_up() -> None:
    """Draw and save one tiny figure in memory: loads fonts, mathtext and the PDF/SVG back ends once,
    so that a worker forked afterwards starts warm (see :mod:`filters.workers.warm`)."""
    import io

    with deck_style():
        fig = Figure(figsize=(1, 1), layout="constrained")
        ax = fig.add_subplot()
        ax.imshow(np.zeros((2, 2)), cmap="viridis")
        ax.set_title("$P$ ó")
        fig.colorbar(ax.images[0], ax=ax)
        for fmt in ("pdf", "png"):
            fig.savefig(io.BytesIO(), format=fmt)
