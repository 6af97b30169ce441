"""Drawing, shared by the figure kinds: the deck's one style, attention heatmaps, saving.

Plot helpers take an ``ax``, return the artists they drew, and take keyword-only options (the
matplotlib gallery's and seaborn's habit). No pyplot: each figure is a plain
:class:`matplotlib.figure.Figure`, so nothing global leaks between figures or processes. A kind's
own drawing (its ``draw``) lives in its file; :func:`render` draws any kind in the deck's style.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.style
import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from filters import STYLE
from filters.labels import LABELS

# Weights are probabilities: one fixed colour scale for every attention heatmap of a deck, so
# that two slides can be compared by eye.
WEIGHT_RANGE = (0.0, 1.0)


def _text_colour(rgba) -> str:
    """Black on light cells, white on dark ones (relative luminance, ITU-R BT.709)."""
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


def attention_heatmap(ax, weights, query_tokens, key_tokens, *, precision: int = 2, annotate: bool = True,
                      cmap: str = "viridis", labels: dict | None = None, text_kws: dict | None = None):
    """Draw attention weights as a heatmap: queries on rows, keys on columns.

    Args:
        ax: the axes to draw in.
        weights: array of shape (L, S), rows sum to 1 (a fully masked row is all zero).
        query_tokens: L row labels; key_tokens: S column labels.
        precision: decimals printed in each cell.
        annotate: print the weight in each cell.
        cmap: colormap name; the colour scale is fixed to [0, 1].
        labels: axis names (see :data:`filters.labels.LABELS`).
        text_kws: extra keyword arguments for the cell texts (copied, never changed).

    Returns:
        ``(image, texts)``: the :class:`~matplotlib.image.AxesImage` and the list of cell texts.
    """
    labels = labels or LABELS["es"]
    weights = np.asarray(weights, dtype=float)
    norm = Normalize(*WEIGHT_RANGE)
    image = ax.imshow(weights, cmap=cmap, norm=norm, interpolation="nearest", aspect="auto")
    ax.set_xticks(range(len(key_tokens)), labels=key_tokens, rotation=40, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(len(query_tokens)), labels=query_tokens)
    ax.set_xlabel(labels["key"])
    ax.set_ylabel(labels["query"])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    texts = []
    if annotate:
        kws = {"ha": "center", "va": "center", "fontsize": 7 if weights.shape[1] <= 8 else 6, **(text_kws or {})}
        colours = image.cmap(norm(weights))
        for i in range(weights.shape[0]):
            for j in range(weights.shape[1]):
                texts.append(ax.text(j, i, f"{weights[i, j]:.{precision}f}", color=_text_colour(colours[i, j]), **kws))
    return image, texts


def render(kind, data, options, path: Path, *, lang: str = "es") -> Figure:
    """Draw ``kind``'s figure (a :class:`filters.kind.Kind`) from ``data`` in the deck's style, in
    ``lang``, and save it to ``path`` (format from its suffix). Returns the figure (for tests that
    read back its geometry)."""
    with matplotlib.style.context(STYLE):
        fig = kind.draw(data, options, kind.labels_for(lang))
        save(fig, path)
    return fig


def save(fig: Figure, path: Path) -> None:
    """Save ``fig``; PDF and SVG without a creation date, so the same numbers give the same bytes."""
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
