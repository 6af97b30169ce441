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
from matplotlib.font_manager import FontProperties
from matplotlib.image import AxesImage
from matplotlib.text import Text
from matplotlib.textpath import text_to_path

from filters.blocks.labels import LABELS
from filters.figures.render import (
    MIN_TEXT_PT,
    before_save,
    break_lines,
    current_page,
    projected_scale,
    shrink_to_fit,
    slide_figure,
)

# Weights are probabilities: one fixed colour scale for every attention heatmap of a deck, so
# that two slides can be compared by eye.
WEIGHT_RANGE = (0.0, 1.0)

# The smallest text we put on a slide, as projected: a cell number under it is not drawn.
MIN_PROJECTED_PT = MIN_TEXT_PT
# Cell numbers and tick labels, as projected, when they have room; tick labels shrink down to
# MIN_TICK_PT, then every other one moves to the opposite side, then only every second (third …)
# token is labelled: a label is never smaller than MIN_TICK_PT on the page.
NUMBER_PT, TICK_PT, MIN_TICK_PT = 8.0, 8.0, MIN_TEXT_PT
# The colour bar's name (the style's legend size: it is a legend of the colours).
COLORBAR_PT = 9.0


# What a heatmap needs besides its cells, across (points): its row names and labels, and a colour
# bar with its ticks and name; and a column that holds a 2-decimal number at 7 pt.
FRAME_PT, CELL_PT = 110.0, 20.0


def widened(figsize: tuple[float, float], height: str, width: float = math.inf) -> tuple[float, float]:
    """``figsize``'s proportions, made wider where needed for the figure to be at least ``width``
    points wide when placed ``height`` high (never wider than the page's text: see
    :func:`filters.figures.render.placed_size`). A low figure keeps the room its labels need
    across; ``math.inf``: as wide as the text."""
    tall = current_page().points(height)
    return max(figsize[0], figsize[1] * min(width, 1e4) / tall), figsize[1]


def heatmap_width(columns: int) -> float:
    """The width (points) one heatmap of ``columns`` keys needs for its numbers at 7 pt (up to 12
    columns; more take the text's width: their numbers are left out, their labels want room)."""
    return FRAME_PT + CELL_PT * columns if columns <= 12 else math.inf


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
    widest: str  # the widest number of its cells, as printed
    alternate: bool = True  # may put every other tick label on the opposite side (not between panels)
    colorbar: object = None  # its colorbar, if weights_colorbar gave it one
    numbers_omitted: bool = False  # numbers were wanted but would be under MIN_PROJECTED_PT
    secondary: tuple = ()  # the top and right axes that hold every other tick label when room is short
    row_axes: tuple = ()  # other axes on the same rows (a bar chart beside it): they get the same row labels
    reach: tuple = (math.inf, math.inf)  # the longest a key label (upright) and a row label may be, figure points


# The heatmaps of each figure, until it is settled.
_HEATMAPS: weakref.WeakKeyDictionary[Figure, list[Heatmap]] = weakref.WeakKeyDictionary()


def _points(ax) -> tuple[float, float]:
    """Width and height of ``ax`` in figure points, in the figure's current layout."""
    box = ax.get_window_extent()
    return box.width * 72 / ax.figure.dpi, box.height * 72 / ax.figure.dpi


# A label takes at most this share of the room between its neighbours' ticks: the rest keeps it
# apart from them (measured glyph boxes, see _text_width).
FILL = 0.85


def _text_width(text: str, size: float = 1.0, prop: FontProperties | None = None) -> float:
    """Width (points) of ``text`` drawn at ``size`` points in the current style's font (matplotlib's
    own measure, the one its text boxes use)."""
    prop = (prop or FontProperties()).copy()
    prop.set_size(100)
    width, _, _ = text_to_path.get_text_width_height_descent(text, prop, ismath=False)
    return width * size / 100


def _line_height(size: float = 1.0) -> float:
    """Height (points) of a line of text at ``size`` points: the box matplotlib gives a one-line label."""
    prop = FontProperties(size=100)
    _, height, _ = text_to_path.get_text_width_height_descent("lp", prop, ismath=False)
    return height * size / 100


def _x_rotation(tokens: list[str], pitch: float, scale: float) -> int:
    """How the key labels stand: level when they fit so (at full size, or at the smallest for
    a letter or two: the toy's symbols), else upright (90°, which needs the least room)."""
    level = _tick_size(pitch, scale, sides=1, rotation=0, tokens=tokens)
    short = max(map(len, tokens), default=0) <= 2
    return 0 if level * scale >= (MIN_TICK_PT if short else TICK_PT) * 0.999 else 90


def _tick_size(pitch: float, scale: float, *, sides: int, rotation: int = 0, tokens=()) -> float:
    """The tick labels' font size (figure points) for cells ``pitch`` figure points apart, labels on
    ``sides`` sides (2: every other label on the opposite side, twice the room), turned by
    ``rotation`` degrees (x labels; 0 with ``tokens``: level, else the labels are rows of text):
    what each label takes along the axis is its measured width when level, its line height when
    upright or on the y axis; it takes at most :data:`FILL` of its room."""
    room = pitch * sides * FILL
    if rotation == 0 and tokens:
        widest = max((_text_width(t) for t in tokens if t), default=0.0)
        return min(TICK_PT / scale, room / widest) if widest else TICK_PT / scale
    return min(TICK_PT / scale, room / _line_height())


# The most of a figure's height an upright key label, and of its width a row label, may take.
REACH = 0.3


def _clipped(token: str, size: float, room: float) -> str:
    """``token``, or as much of it as fits ``room`` points at ``size`` followed by "…"."""
    if _text_width(token, size) <= room:
        return token
    for end in range(len(token) - 1, 0, -1):
        if _text_width(token[:end] + "…", size) <= room:
            return token[:end] + "…"
    return token[:1] + "…"


def _place_ticks(heatmap: Heatmap, *, axis: str, size: float, sides: int, rotation: int = 0, step: int = 1) -> None:
    """A tick label for every ``step``-th token on ``axis`` ("x" or "y") at ``size``; with
    ``sides=2`` every other label goes to the opposite side: labels never overlap."""
    ax, (top, right) = heatmap.ax, heatmap.secondary
    tokens = heatmap.key_tokens if axis == "x" else heatmap.query_tokens
    if axis == "y" or rotation == 90:  # a label as long as its axis would leave the cells no room
        tokens = [_clipped(token, size, heatmap.reach[axis == "y"]) for token in tokens]
    kept = list(range(0, len(tokens), step))
    main, other = kept[::sides], kept[1::sides] if sides == 2 else []
    if axis == "y":
        ax.set_yticks(main, labels=[tokens[i] for i in main], fontsize=size)
        right.set_yticks(other, labels=[tokens[i] for i in other], fontsize=size)
        for beside in heatmap.row_axes:
            beside.set_yticks(kept, labels=[tokens[i] for i in kept], fontsize=size)
        return
    bottom = {0: {"rotation": 0, "ha": "center"},
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
    widest = max({f"{w:.{precision}f}" for w in weights.ravel()}, key=_text_width)
    heatmap = Heatmap(ax, image, list(map(str, query_tokens)), list(map(str, key_tokens)), texts, annotate, scale,
                      widest, alternate=alternate, secondary=secondary)
    _HEATMAPS.setdefault(ax.figure, []).append(heatmap)
    before_save(ax.figure, settle)
    before_save(ax.figure, shrink_to_fit)  # then what still runs off or collides gives up a point or two (not under 7)
    return heatmap


def weights_colorbar(fig: Figure, heatmap: Heatmap, *, ax, labels: dict, **kws):
    """The colorbar of attention weights; its label will say if the cells' numbers are left out."""
    heatmap.colorbar = fig.colorbar(heatmap.image, ax=ax, **kws)
    heatmap.colorbar.set_label(labels["weight"], fontsize=COLORBAR_PT)
    heatmap.colorbar.base_label = labels["weight"]
    heatmap.colorbar.omitted_note = f"\n({labels['numbers_omitted']})"
    return heatmap.colorbar


def settle(fig: Figure) -> None:
    """Size the tick labels and cell numbers of every heatmap of ``fig`` for the slide, now that all
    of it is drawn. Labels take room from the cells, and the cells decide how large labels may be:
    lay out with small labels (the most room the cells can get), choose each axis' sides, give both
    axes the size the tighter one allows, and settle that; then the numbers. Names longer than
    their room take several lines (:func:`wrap_names`).

    Where a label would be under :data:`MIN_TICK_PT` on the page even on both sides, only every
    second (third …) token is labelled, at that size: labels never overlap."""
    heatmaps = _HEATMAPS.pop(fig, [])
    if not heatmaps:
        return
    width, height = fig.get_figwidth() * 72, fig.get_figheight() * 72
    for heatmap in heatmaps:
        heatmap.reach = (height * REACH, width * REACH)
        for axis in ("x", "y"):
            _place_ticks(heatmap, axis=axis, size=MIN_TICK_PT / heatmap.scale, sides=1, rotation=90)
    wrap_names(fig)  # draws
    layout = {}  # per heatmap: the sides of each axis
    for heatmap in heatmaps:
        (x_pitch, y_pitch), scale = _pitches(heatmap), heatmap.scale
        rotation = _x_rotation(heatmap.key_tokens, x_pitch, scale)
        x_size = _tick_size(x_pitch, scale, sides=1, rotation=rotation, tokens=heatmap.key_tokens)
        y_size = _tick_size(y_pitch, scale, sides=1)
        layout[id(heatmap)] = {axis: 2 if heatmap.alternate and size * scale < MIN_TICK_PT else 1
                               for axis, size in (("x", x_size), ("y", y_size))}
    size, rotations = 0.0, {}
    for _ in range(3):  # one size for every label of the figure: the tightest axis decides
        fits = {}
        for heatmap in heatmaps:
            (x_pitch, y_pitch), sides = _pitches(heatmap), layout[id(heatmap)]
            rotations[id(heatmap)] = rotation = _x_rotation(heatmap.key_tokens, x_pitch, heatmap.scale)
            fits[id(heatmap)] = (_tick_size(x_pitch, heatmap.scale, sides=sides["x"], rotation=rotation,
                                            tokens=heatmap.key_tokens),
                                 _tick_size(y_pitch, heatmap.scale, sides=sides["y"]))
        smallest = max(MIN_TICK_PT / h.scale for h in heatmaps)
        size = max(smallest, min(min(fit) for fit in fits.values()))
        _label_all(heatmaps, layout, rotations, size)
    for _ in range(2):  # the numbers may take their colour bar a second line, and the cells room
        omitted = [h.numbers_omitted for h in heatmaps]
        for heatmap in heatmaps:
            _size_numbers(heatmap)
        if omitted == [h.numbers_omitted for h in heatmaps]:
            break
        _label_all(heatmaps, layout, rotations, size)


def _label_all(heatmaps: list[Heatmap], layout: dict, rotations: dict, size: float) -> None:
    """Label every heatmap's rows and columns at ``size`` (each on the sides ``layout`` gives it,
    its key labels turned by ``rotations``), every token or every ``_step``-th where its cells are
    too close for ``size``; names wrapped for the new layout; then, should that layout have taken
    room from the cells, thinned again (labels never overlap)."""
    fig = heatmaps[0].ax.figure
    for final in (False, True):
        for heatmap in heatmaps:
            (x_pitch, y_pitch), sides = _pitches(heatmap), layout[id(heatmap)]
            rotation = rotations[id(heatmap)]
            x_fit = _tick_size(x_pitch, heatmap.scale, sides=sides["x"], rotation=rotation, tokens=heatmap.key_tokens)
            y_fit = _tick_size(y_pitch, heatmap.scale, sides=sides["y"])
            _place_ticks(heatmap, axis="x", rotation=rotation, sides=sides["x"], size=size, step=_step(x_fit, size))
            _place_ticks(heatmap, axis="y", sides=sides["y"], size=size, step=_step(y_fit, size))
        if final:
            fig.draw_without_rendering()
        else:
            wrap_names(fig)  # draws


def _names(fig: Figure):
    """The names of ``fig`` that may take several lines, each with the length (points) it may take:
    each axes' title and x name (its width; beside other panels or alone, up to the figure's edges
    around it), each y name and colour bar name (up to the figure's edges around it), and the
    figure's own title and axis names (its width or height)."""
    width, height = (length * 72 / fig.dpi for length in (fig.bbox.width, fig.bbox.height))
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        box = ax.get_window_extent().transformed(fig.dpi_scale_trans.inverted())  # inches
        x_mid, y_mid = (box.x0 + box.x1) / 2 * 72, (box.y0 + box.y1) / 2 * 72
        across = 2 * min(x_mid, width - x_mid)
        along = 2 * min(y_mid, height - y_mid)
        panels = sum(1 for other in fig.axes if other.get_visible() and not hasattr(other, "_colorbar")
                     and other is not ax and _same_row(other, ax))
        flat = box.width * 72 if panels else across
        yield ax.title, flat
        yield ax.xaxis.label, flat
        yield ax.yaxis.label, along
    for name, length in (("_suptitle", width), ("_supxlabel", width), ("_supylabel", height)):
        if getattr(fig, name, None) is not None:
            yield getattr(fig, name), length


def _same_row(a, b) -> bool:
    """Whether axes ``a`` and ``b`` share some height (panels side by side)."""
    one, two = a.get_position(), b.get_position()
    return one.y0 < two.y1 and two.y0 < one.y1


def _wrapped(text: str, room: float, size: float, prop: FontProperties) -> str:
    """``text`` broken at spaces into as few lines as fit ``room`` points at ``size``, about as long
    each (each line of it on its own; a word longer than the room keeps a line of its own)."""
    def width(part: str) -> float:
        return _text_width(part, size, prop)

    out = []
    for line in text.split("\n"):
        words = line.split(" ")
        count = len(_pack(words, room, width))
        limit = width(line) / count
        while len(parts := _pack(words, limit, width)) > count:
            limit *= 1.05
        out.extend(parts)
    return "\n".join(out)


def _pack(words: list[str], limit: float, width) -> list[str]:
    """``words`` in lines, each as many as fit ``limit`` (``width`` measures a line)."""
    return break_lines(" ".join(words), limit, width)


# Each name wrap_names broke into lines: what it was given, and what it made of it.
_WRAPPED: weakref.WeakKeyDictionary[Text, tuple[str, str]] = weakref.WeakKeyDictionary()


def wrap_names(fig: Figure) -> None:
    """Break each title, axis name and colour bar name of ``fig`` that is longer than its room
    (:func:`_names`) into lines at its spaces, rather than let it run off the figure or into a
    neighbour; lays the figure out before and after. Math text is left as it is."""
    fig.draw_without_rendering()
    changed = False
    for text, room in list(_names(fig)):
        content = text.get_text()
        if not content.strip() or "$" in content or not text.get_visible():
            continue
        original, shown = _WRAPPED.get(text, (content, None))
        if shown != content:  # not ours: someone set it since
            original = content
        wrapped = _wrapped(original, room, text.get_fontsize(), text.get_fontproperties())
        _WRAPPED[text] = (original, wrapped)
        if wrapped != content:
            text.set_text(wrapped)
            changed = True
    if changed:
        fig.draw_without_rendering()


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
    if heatmap.annotate is False or heatmap.numbers_omitted:
        return
    width, height = _points(heatmap.ax)
    rows, cols = len(heatmap.query_tokens), len(heatmap.key_tokens)
    fits = min(width / cols * FILL / _text_width(heatmap.widest), height / rows * FILL / _line_height())
    size = min(NUMBER_PT / heatmap.scale, fits)
    readable = size * heatmap.scale >= MIN_PROJECTED_PT * 0.999
    if not readable:  # too small to read, even when asked for (annotate=True): left out, and said
        for text in heatmap.texts:
            text.remove()
        heatmap.texts, heatmap.numbers_omitted = [], True
        note = heatmap.colorbar.omitted_note if heatmap.colorbar is not None else ""
        if note and _text_width(note.strip(), COLORBAR_PT) <= heatmap.ax.figure.get_figheight() * 72 * 0.9:
            # said where it fits in a line beside the colour bar (a low figure has no room for it)
            heatmap.colorbar.set_label(heatmap.colorbar.base_label + heatmap.colorbar.omitted_note,
                                       fontsize=COLORBAR_PT)
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
        fig = slide_figure(widened((4.6, 2.6 if rows <= 2 else 3.6), height), height)  # as wide as the text
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


