"""Attention heatmaps, as every kind that shows attention weights draws them (queries on rows, keys
on columns), sized for what the slide will show.

:func:`attention_heatmap` draws one in an ``ax``; :func:`settle` (run by :func:`filters.render.save`)
sizes the tick labels and cell numbers of all of a figure's heatmaps once the whole figure is drawn;
:func:`heads_figure` draws one heatmap per attention head.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.text import Text

from filters.blocks.labels import LABELS
from filters.figures.render import MIN_TEXT_PT, before_save, projected_scale, slide_figure

# Weights are probabilities: one fixed colour scale for every attention heatmap of a deck, so
# that two slides can be compared by eye.
WEIGHT_RANGE = (0.0, 1.0)

# The smallest text we put on a slide, as projected: a cell number under it is not drawn.
MIN_PROJECTED_PT = MIN_TEXT_PT
# Cell numbers and tick labels, as projected, when they have room; tick labels shrink down to
# MIN_TICK_PT, then every other one moves to the opposite side, then only every second (third …)
# token is labelled: a label is never smaller than MIN_TICK_PT on the page.
NUMBER_PT, TICK_PT, MIN_TICK_PT = 8.0, 8.0, MIN_TEXT_PT


def _text_colour(rgba) -> str:
    """Black on light cells, white on dark ones (relative luminance, ITU-R BT.709)."""
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


@dataclass
class Heatmap:
    """An attention heatmap drawn by :func:`attention_heatmap`. Its tick labels and cell numbers are
    sized by :func:`settle` once the whole figure is drawn (every panel takes room from the others)."""

    ax: object  # matplotlib Axes
    image: AxesImage
    query_tokens: list[str]
    key_tokens: list[str]
    texts: list[Text]  # the numbers in the cells (empty when there are none)
    annotate: bool | None
    scale: float  # slide points per figure point
    widest: int  # characters of the widest number
    alternate: bool = True  # may put every other tick label on the opposite side (not between panels)
    colorbar: object = None  # its colorbar, if weights_colorbar gave it one
    numbers_omitted: bool = False  # numbers were wanted but would be under MIN_PROJECTED_PT
    secondary: tuple = ()  # the top and right axes that hold every other tick label when room is short


# The heatmaps of each figure, until it is settled.
_HEATMAPS: weakref.WeakKeyDictionary[Figure, list[Heatmap]] = weakref.WeakKeyDictionary()


def _points(ax) -> tuple[float, float]:
    """Width and height of ``ax`` in figure points, in the figure's current layout."""
    box = ax.get_window_extent()
    return box.width * 72 / ax.figure.dpi, box.height * 72 / ax.figure.dpi


def _x_rotation(tokens: list[str], pitch: float, scale: float) -> int:
    """How the key labels stand: level when they are a letter or two, slanted at 40° when few and
    there is room for them at full size, else upright (90°, which needs the least room)."""
    if max(map(len, tokens), default=0) <= 2:
        return 0
    return 40 if len(tokens) <= 8 and _tick_size(pitch, scale, sides=1, rotation=40, tokens=tokens) >= TICK_PT / scale \
        else 90


def _tick_size(pitch: float, scale: float, *, sides: int, rotation: int = 0, tokens=()) -> float:
    """The tick labels' font size (figure points) for cells ``pitch`` figure points apart, labels on
    ``sides`` sides (2: every other label on the opposite side, twice the room), turned by
    ``rotation`` degrees (x labels): what each label takes along the axis is its line height when
    upright or level rows (y), about 1.6 line heights at 40°, and its width when level (x)."""
    room = pitch * sides
    if rotation == 0 and tokens:  # level key labels: a character is about 0.6 em wide
        return min(TICK_PT / scale, room * 0.9 / (0.6 * max(1, *map(len, tokens))))
    return min(TICK_PT / scale, room * 0.85 / (1.6 if rotation == 40 else 1))


def _place_ticks(heatmap: Heatmap, *, axis: str, size: float, sides: int, rotation: int = 0, step: int = 1) -> None:
    """A tick label for every ``step``-th token on ``axis`` ("x" or "y") at ``size``; with
    ``sides=2`` every other label goes to the opposite side: labels never overlap."""
    ax, (top, right) = heatmap.ax, heatmap.secondary
    tokens = heatmap.key_tokens if axis == "x" else heatmap.query_tokens
    kept = list(range(0, len(tokens), step))
    main, other = kept[::sides], kept[1::sides] if sides == 2 else []
    if axis == "y":
        ax.set_yticks(main, labels=[tokens[i] for i in main], fontsize=size)
        right.set_yticks(other, labels=[tokens[i] for i in other], fontsize=size)
        return
    bottom = {0: {"rotation": 0, "ha": "center"}, 40: {"rotation": 40, "ha": "right"},
              90: {"rotation": 90, "ha": "right", "va": "center"}}[rotation]  # ending at their tick
    ax.set_xticks(main, labels=[tokens[i] for i in main], fontsize=size, rotation_mode="anchor", **bottom)
    top.set_xticks(other, labels=[tokens[i] for i in other], fontsize=size, rotation_mode="anchor",
                   **{**bottom, "ha": "left" if rotation else "center"})  # the top ones start there


def attention_heatmap(ax, weights, query_tokens, key_tokens, *, precision: int = 2, annotate: bool | None = None,
                      cmap: str = "viridis", labels: dict | None = None, scale: float = 1.0,
                      alternate: bool = True, text_kws: dict | None = None) -> Heatmap:
    """Draw attention weights as a heatmap: queries on rows, keys on columns, one tick label per token.

    Sizes follow what the slide will show (``scale``: slide points per figure point, from
    :func:`projected_scale`) and are set when the figure is saved (:func:`save` calls
    :func:`settle`): tick labels as large as their rows and columns allow, every other one on the
    opposite side when that is needed to keep them apart; numbers in the cells only where they are
    at least :data:`MIN_PROJECTED_PT` on the slide.

    Args:
        ax: the axes to draw in (its figure should use ``layout="constrained"``).
        weights: array of shape (L, S), rows sum to 1 (a fully masked row is all zero).
        query_tokens: L row labels; key_tokens: S column labels.
        precision: decimals printed in each cell.
        annotate: ``False`` no numbers; ``True`` or ``None`` (auto): numbers where they are readable
            (the colorbar says when they are left out).
        cmap: colormap name; the colour scale is fixed to [0, 1].
        labels: axis names (see :data:`filters.labels.LABELS`).
        scale: slide points per figure point.
        alternate: when labels lack room, put every other one on the opposite side (``False`` for
            a heatmap beside another, whose labels would meet them: they only shrink then).
        text_kws: extra keyword arguments for the cell texts (copied, never changed).

    Returns:
        The :class:`Heatmap`: its image, and (once settled) its cell texts.
    """
    labels = labels or LABELS["es"]
    weights = np.asarray(weights, dtype=float)
    L, S = weights.shape
    norm = Normalize(*WEIGHT_RANGE)
    image = ax.imshow(weights, cmap=cmap, norm=norm, interpolation="nearest", aspect="auto")
    ax.set_xlabel(labels["key"])
    ax.set_ylabel(labels["query"])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    secondary = (ax.secondary_xaxis("top"), ax.secondary_yaxis("right"))
    for extra in secondary:
        extra.tick_params(length=0)
        extra.spines[:].set_visible(False)
    texts = []
    if annotate is not False:
        kws = {"ha": "center", "va": "center", **(text_kws or {})}
        colours = image.cmap(norm(weights))
        texts = [ax.text(j, i, f"{weights[i, j]:.{precision}f}", color=_text_colour(colours[i, j]), **kws)
                 for i in range(L) for j in range(S)]
    widest = max(len(f"{w:.{precision}f}") for w in weights.ravel())
    heatmap = Heatmap(ax, image, list(map(str, query_tokens)), list(map(str, key_tokens)), texts, annotate, scale,
                      widest, alternate=alternate, secondary=secondary)
    _HEATMAPS.setdefault(ax.figure, []).append(heatmap)
    before_save(ax.figure, settle)
    return heatmap


def weights_colorbar(fig: Figure, heatmap: Heatmap, *, ax, labels: dict, **kws):
    """The colorbar of attention weights; its label will say if the cells' numbers are left out."""
    heatmap.colorbar = fig.colorbar(heatmap.image, ax=ax, label=labels["weight"], **kws)
    heatmap.colorbar.omitted_note = f"\n({labels['numbers_omitted']})"
    return heatmap.colorbar


def settle(fig: Figure) -> None:
    """Size the tick labels and cell numbers of every heatmap of ``fig`` for the slide, now that all
    of it is drawn. Labels take room from the cells, and the cells decide how large labels may be:
    lay out with small labels (the most room the cells can get), choose each axis' sides, give both
    axes the size the tighter one allows, and settle that; then the numbers.

    Where a label would be under :data:`MIN_TICK_PT` on the page even on both sides, only every
    second (third …) token is labelled, at that size."""
    heatmaps = _HEATMAPS.pop(fig, [])
    if not heatmaps:
        return
    for heatmap in heatmaps:
        for axis in ("x", "y"):
            _place_ticks(heatmap, axis=axis, size=MIN_TICK_PT / heatmap.scale, sides=1, rotation=90)
    fig.draw_without_rendering()
    layout = {}  # per heatmap: the x labels' rotation, and the sides of each axis
    for heatmap in heatmaps:
        (x_pitch, y_pitch), scale = _pitches(heatmap), heatmap.scale
        rotation = _x_rotation(heatmap.key_tokens, x_pitch, scale)
        x_size = _tick_size(x_pitch, scale, sides=1, rotation=rotation, tokens=heatmap.key_tokens)
        y_size = _tick_size(y_pitch, scale, sides=1)
        layout[id(heatmap)] = (rotation, {axis: 2 if heatmap.alternate and size * scale < MIN_TICK_PT else 1
                                          for axis, size in (("x", x_size), ("y", y_size))})
    for _ in range(3):  # one size for every label of the figure: the tightest axis decides
        fits = {}
        for heatmap in heatmaps:
            (x_pitch, y_pitch), (_, sides) = _pitches(heatmap), layout[id(heatmap)]
            rotation = _x_rotation(heatmap.key_tokens, x_pitch, heatmap.scale)  # slanted only while there is room
            fits[id(heatmap)] = (rotation,
                                 _tick_size(x_pitch, heatmap.scale, sides=sides["x"], rotation=rotation,
                                            tokens=heatmap.key_tokens),
                                 _tick_size(y_pitch, heatmap.scale, sides=sides["y"]))
        smallest = max(MIN_TICK_PT / h.scale for h in heatmaps)
        size = max(smallest, min(min(x, y) for _, x, y in fits.values()))
        for heatmap in heatmaps:
            sides, (rotation, x_fit, y_fit) = layout[id(heatmap)][1], fits[id(heatmap)]
            _place_ticks(heatmap, axis="x", rotation=rotation, sides=sides["x"], size=size, step=_step(x_fit, size))
            _place_ticks(heatmap, axis="y", sides=sides["y"], size=size, step=_step(y_fit, size))
        fig.draw_without_rendering()
    for heatmap in heatmaps:
        _size_numbers(heatmap)


def _step(fits: float, size: float) -> int:
    """Label every ``_step``-th token: 1 when labels of ``size`` fit (``fits`` is the largest that
    does), else as many as make room for them."""
    return 1 if fits >= size * 0.999 else math.ceil(size / fits)


def _pitches(heatmap: Heatmap) -> tuple[float, float]:
    """Figure points between the heatmap's columns, and between its rows."""
    width, height = _points(heatmap.ax)
    return width / len(heatmap.key_tokens), height / len(heatmap.query_tokens)


def _size_numbers(heatmap: Heatmap) -> None:
    """Give the cell numbers the size their cells allow, or take them away when that is too small
    to read, and say so on the colorbar."""
    width, height = _points(heatmap.ax)
    rows, cols = len(heatmap.query_tokens), len(heatmap.key_tokens)
    fits = min(width / cols * 0.9 / (0.6 * heatmap.widest), height / rows * 0.7)  # digits are about 0.6 em wide
    size = min(NUMBER_PT / heatmap.scale, fits)
    readable = size * heatmap.scale >= MIN_PROJECTED_PT * 0.999
    if not readable:  # too small to read, even when asked for (annotate=True): left out, and said
        for text in heatmap.texts:
            text.remove()
        heatmap.texts, heatmap.numbers_omitted = [], True
        if heatmap.colorbar is not None:
            heatmap.colorbar.set_label(heatmap.colorbar.ax.get_ylabel() + heatmap.colorbar.omitted_note)
    for text in heatmap.texts:
        text.set_fontsize(size)


def heads_figure(head_weights, query_tokens, key_tokens, *, labels: dict, height: str, precision: int = 2,
                 annotate: bool | None = None, cmap: str = "viridis", title: str | None = None,
                 titles: list[str] | None = None, fig: Figure | None = None) -> Figure:
    """One heatmap per attention head, side by side (up to four in a row, fewer for many keys), on one
    colour scale with one colorbar; the query labels on the first column only, the key labels on the
    bottom row.

    Args:
        head_weights: array of shape (H, L, S), each row of each head sums to 1.
        query_tokens, key_tokens: L and S labels.
        labels: the figure's words (``labels["head"]`` is formatted with ``h``, from 1).
        height: the figure's height on the slide (sizes its fonts, see :func:`projected_scale`).
        title: above the panels, if any; titles: one per panel (default: "head 1", "head 2" …).
        fig: the figure to draw in (a new one, sized for the panels, by default).
    """
    head_weights = np.asarray(head_weights, dtype=float)
    H, _, S = head_weights.shape
    cols = max(1, min(H, 4, int(270 / (5 * S))))  # at least 5 pt a column, in about 270 pt for the panels
    rows = -(-H // cols)
    if fig is None:
        fig = slide_figure((4.6, 2.6 if rows <= 2 else 3.6), height)  # as wide as the slide allows
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    scale = projected_scale(fig, height)
    for h, ax in enumerate(axes):
        if h >= H:
            ax.set_visible(False)
            continue
        heatmap = attention_heatmap(ax, head_weights[h], query_tokens, key_tokens, precision=precision,
                                    annotate=annotate, cmap=cmap, labels=labels, scale=scale, alternate=False)
        ax.set_title(titles[h] if titles else labels["head"].format(h=h + 1))
        ax.set_xlabel("")  # one axis name for the whole grid, below
        ax.set_ylabel("")
        if h % cols:
            heatmap.query_tokens = [""] * len(heatmap.query_tokens)
        if h < H - cols:
            heatmap.key_tokens = [""] * len(heatmap.key_tokens)
    fig.supxlabel(labels["key"], fontsize=10)
    fig.supylabel(labels["query"], fontsize=10)
    if title:
        fig.suptitle(title, fontsize=10)
    weights_colorbar(fig, heatmap, ax=list(axes[:H]), labels=labels, fraction=0.04, pad=0.02)
    return fig


