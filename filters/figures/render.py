"""Drawing, shared by the figure kinds: the deck's one style, a figure's scale on the slide, saving.

Plot helpers take an ``ax``, return the artists they drew, and take keyword-only options (the
matplotlib gallery's and seaborn's habit). No pyplot: each figure is a plain
:class:`matplotlib.figure.Figure`, so nothing global leaks between figures or processes. A kind's
own drawing (its ``draw``) lives in its file; :func:`render` draws any kind in the deck's style;
attention heatmaps are in :mod:`filters.figures.heatmap`.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import weakref
from collections.abc import Callable
from pathlib import Path

import matplotlib.style
import numpy as np
from matplotlib.figure import Figure
from matplotlib.text import Text

from filters.blocks.page import COLUMN_GAP, DEFAULT_PAGE, Page, share_in_row  # noqa: F401 (COLUMN_GAP: arrange's)
from filters.errors import BlockError
from filters.figures import FALLBACK_FONTS, STYLE, available_fallback_fonts

# The smallest text a figure may have, in points on the page: a Beamer frame's body text is 10.9 pt,
# and under 7 pt a label cannot be read from the back of a hall. Kinds choose their sizes at or
# above it (the style's are 8–9 pt), and thin or drop a label that would need less.
MIN_TEXT_PT = 7.0

# The page the figures being drawn are for (the deck's, set by deck_style).
_PAGE: contextvars.ContextVar[Page] = contextvars.ContextVar("page", default=DEFAULT_PAGE)


def current_page() -> Page:
    """The text area of the frames the figures being drawn are for (:func:`deck_style`'s ``page``)."""
    return _PAGE.get()


def placed_size(figsize: tuple[float, float], height: str) -> tuple[float, float]:
    """The size (inches) a figure of ``figsize``'s proportions has when it is placed ``height`` high
    on the current page (:func:`current_page`): that height, and the width its proportions give, at
    most the text width. A figure drawn at this size is placed unscaled: its fonts' points are the
    page's."""
    page = current_page()
    tall = page.inches(height)
    return min(page.width_inches, figsize[0] / figsize[1] * tall), tall


def projected_scale(fig: Figure, height: str) -> float:
    """Page points per figure point when ``fig`` is placed ``height`` high (``"72%"`` of the text
    height, or a length such as ``"5cm"``) on the current page, no wider than its text (LaTeX's
    ``height=…,width=\\linewidth,keepaspectratio``): fonts of ``s`` points in the figure are
    ``s × projected_scale`` points on the page; 1 for a figure made by :func:`slide_figure`."""
    page = current_page()
    return min(page.inches(height) / fig.get_figheight(), page.width_inches / fig.get_figwidth())


# Stacked, each row after the first leaves this much of the height (TeX points) to the caption and
# the space above the next figure.
ROW_GAP_PT = 24.0


def arrange(proportions: list[tuple[float, float]], height: str, *, ncol: int | None = None,
            together: bool = True) -> tuple[int, list[tuple[float, float]]]:
    """How the figures of one block share its room on the current page: ``height`` high in all, in
    rows of ``ncol`` side by side (Quarto's ``layout-ncol``), the rows dividing the height (less
    :data:`ROW_GAP_PT` for each caption between them).

    Args:
        proportions: each figure's (width, height), any unit: only their ratio counts.
        height: the block's height on the slide (``"66%"``, ``"5cm"``).
        ncol: figures in a row; ``None``: the number (1 to 4) that makes the smallest figure largest
            (by a tenth at least: else fewer, read top to bottom).
        together: whether the figures follow one another (nothing drawn between them): only then
            do they stand side by side by themselves (with ``ncol`` given, what comes between them
            goes after their row).

    Returns:
        The figures in a row, and each figure's size in inches (as placed: unscaled).
    """
    page, n = current_page(), len(proportions)
    choices = [ncol] if ncol else range(1, min(n, 4) + 1)
    if not together and ncol is None:
        choices = [1]
    best = None
    for k in choices:
        rows = -(-n // k)
        tall = max(page.inches(height) - (rows - 1) * ROW_GAP_PT / 72.27, page.inches(height) / 2) / rows
        box = (page.width_inches * (share_in_row(k) if k > 1 else 1), tall)
        sizes = [_fitted(w / h, *box) for w, h in proportions]
        smallest = min(w * h for w, h in sizes)
        if best is None or smallest > best[0] * 1.1:  # more columns only for clearly larger figures
            best = smallest, k, sizes
    return best[1], best[2]


def _fitted(ratio: float, width: float, height: float) -> tuple[float, float]:
    """The largest size of proportions ``ratio`` (width ÷ height) inside ``width`` × ``height``."""
    tall = min(height, width / ratio)
    return tall * ratio, tall


def slide_figure(figsize: tuple[float, float], height: str, *, layout: str = "constrained") -> Figure:
    """A new figure of ``figsize``'s proportions at the size it will have on the slide when placed
    ``height`` high (:func:`placed_size`); constrained layout, or ``layout="none"`` for a figure
    that places its axes itself."""
    return Figure(figsize=placed_size(figsize, height), layout=layout)


@contextlib.contextmanager
def deck_style(page: Page = DEFAULT_PAGE):
    """The deck's one style (``filters/figures/attnslides.mplstyle``), with the installed fallback fonts after
    DejaVu Sans, so that any script or emoji in a label is drawn (matplotlib takes each missing
    glyph from the next font of the list); figures drawn inside are sized for ``page``."""
    from matplotlib import font_manager

    fallbacks = available_fallback_fonts()
    known = {font.name for font in font_manager.fontManager.ttflist}
    for name in fallbacks:
        if name not in known:  # installed after matplotlib built its font list
            font_manager.fontManager.addfont(str(FALLBACK_FONTS[name]))
    token = _PAGE.set(page)
    try:
        with matplotlib.style.context(STYLE), matplotlib.rc_context({"font.family": ["DejaVu Sans", *fallbacks]}):
            yield
    finally:
        _PAGE.reset(token)


def render(kind, data, options, path: Path, *, lang: str = "es", page: Page = DEFAULT_PAGE) -> Figure:
    """Draw ``kind``'s figure (a :class:`filters.kind.Kind`) from ``data`` in the deck's style, in
    ``lang``, at its size on ``page``, and save it to ``path`` (format from its suffix). Returns the
    figure (for tests that read back its geometry)."""
    with deck_style(page):
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


def save(fig: Figure, path: Path, *, apart: bool | str = True) -> None:
    """Save ``fig`` (after its :func:`before_save` steps); PDF and SVG without a creation date, so
    the same numbers give the same bytes. ``apart``: check that no two texts run into each other
    (a kind's figure); ``"ticks"``: no two tick labels (a ``.run`` block may place its own texts on
    one another by design, never matplotlib's ticks).

    Raises:
        BlockError: when a text runs off the figure (it would be cut on the slide), or two run
            into each other."""
    raise_math_text(fig)
    for step in _BEFORE_SAVE.pop(fig, []):
        step(fig)
    check_texts_inside(fig)
    if apart:
        check_texts_apart(fig, ticks_only=apart == "ticks")
    fmt = Path(path).suffix.lstrip(".")
    metadata = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}.get(fmt)
    placed = fig.get_layout_engine() is None  # the kind placed its axes itself (layout="none")
    fig.savefig(path, format=fmt, metadata=metadata)
    if placed and fig.get_layout_engine() is not None:
        # savefig resets a figure without a layout engine to the style's (constrained layout): a
        # later draw (a test measuring it, a second format) would move the axes the kind placed
        fig.set_layout_engine("none")


# mathtext draws sub- and superscripts at 0.7 of the text's size (as TeX's \scriptstyle): math is
# drawn at least this large, so that d_k's k is MIN_TEXT_PT too.
MIN_MATH_PT = MIN_TEXT_PT / 0.7


def _texts(fig: Figure) -> list[Text]:
    """The texts of ``fig`` that are drawn (visible, not empty, not the label of a tick outside its
    axis' view, which matplotlib keeps but does not draw), once it is laid out."""
    hidden = {id(label) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
              for tick in (*axis.get_major_ticks(), *axis.get_minor_ticks()) if not _in_view(axis, tick.get_loc())
              for label in (tick.label1, tick.label2)}
    return [t for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip() and id(t) not in hidden and t.get_figure(root=True) is fig]


def _in_view(axis, value: float) -> bool:
    """Whether ``value`` (data units) lies in ``axis``' view interval, as matplotlib decides which
    ticks to draw (in the axis' transformed scale, a little slack at each end)."""
    lo, hi = sorted(axis.get_view_interval())
    scale = axis.get_transform()
    a, b, v = (scale.transform([[x]])[0][0] if hasattr(scale, "transform") else x for x in (lo, hi, value))
    slack = abs(b - a) * 1e-9
    return a - slack <= v <= b + slack


def raise_math_text(fig: Figure) -> None:
    """Give every text of ``fig`` with math in it (``$d_k$``, a log axis' ``$10^{-1}$``) at least
    :data:`MIN_MATH_PT`, so that its sub- and superscripts are :data:`MIN_TEXT_PT` on the slide.
    (Tick labels are made again at each draw: their axis is told the size.)"""
    fig.draw_without_rendering()  # tick labels get their texts
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for which, ticks in (("major", axis.get_major_ticks()), ("minor", axis.get_minor_ticks())):
                labels = [t.label1 for t in ticks if t.label1.get_visible()]
                if any(_has_math(t.get_text()) and t.get_fontsize() < MIN_MATH_PT for t in labels):
                    axis.set_tick_params(which=which, labelsize=MIN_MATH_PT)
    for text in _texts(fig):
        if text.get_fontsize() < MIN_MATH_PT and _has_math(text.get_text()):
            text.set_fontsize(MIN_MATH_PT)


def _has_math(text: str) -> bool:
    """Whether matplotlib reads ``text`` as mathtext: an even, non-zero number of unescaped ``$``."""
    dollars = len(re.findall(r"(?<!\\)\$", text))
    return dollars > 0 and dollars % 2 == 0


def check_texts_inside(fig: Figure) -> None:
    """Every text of ``fig`` lies inside it (a point of slack): a label longer than its axis, or a
    legend pushed out, is cut at the figure's edge on the slide.

    Raises:
        BlockError: naming the first text that runs off, and how far."""
    text, over = _worst_overrun(fig)
    if text is not None:
        shown = " ".join(text.get_text().split())
        raise BlockError(f"the figure's text «{shown[:60]}» runs {over:.0f} pt off its edge and "
                         "would be cut on the slide: shorten it, or give the figure more room (a larger height)")


def check_texts_apart(fig: Figure, *, ticks_only: bool = False) -> None:
    """No two texts of ``fig`` (tick labels, with ``ticks_only``) run into each other
    (:func:`overlapping_texts`): labels on top of one another are unreadable, however large.

    Raises:
        BlockError: naming the first two."""
    pairs = overlapping_texts(fig)
    if ticks_only:
        ticks = {id(label) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis)
                 for tick in (*axis.get_major_ticks(), *axis.get_minor_ticks()) for label in (tick.label1, tick.label2)}
        pairs = [(a, b) for a, b in pairs if id(a) in ticks and id(b) in ticks]
    if pairs:
        first, second = (" ".join(t.get_text().split())[:40] for t in pairs[0])
        raise BlockError(f"the figure's texts «{first}» and «{second}» would be drawn on top of each other: give the "
                         "figure more room (a larger height, a wider column) or fewer tokens")


def _worst_overrun(fig: Figure) -> tuple[Text | None, float]:
    """The text of ``fig`` that runs farthest off its edge (more than a point), and how far in
    points; ``(None, 0.0)`` when every text is inside. Draws the figure (without rendering)."""
    fig.draw_without_rendering()
    bounds, slack = fig.bbox, fig.dpi / 72
    worst, most = None, 0.0
    for text in _texts(fig):
        box = text.get_window_extent()
        over = max(bounds.x0 - box.x0, box.x1 - bounds.x1, bounds.y0 - box.y0, box.y1 - bounds.y1)
        if over > slack and over > most:
            worst, most = text, over
    return worst, most * 72 / fig.dpi


def shrink_to_fit(fig: Figure, *, overlaps: bool = True) -> None:
    """While a text of ``fig`` runs off its edge (or two texts overlap, with ``overlaps``), make
    every text larger than :data:`MIN_TEXT_PT` (math: :data:`MIN_MATH_PT`) one point smaller, and
    lay the figure out again: labels keep the style's sizes where they fit and give up a point or
    three where the figure is small (a low ``height``, a column). Use it as a :func:`before_save`
    step; what still runs off at the smallest sizes is :func:`check_texts_inside`'s error."""
    while (_worst_overrun(fig)[0] is not None or (overlaps and overlapping_texts(fig))) and _shrink_texts(fig):
        pass


def overlapping_texts(fig: Figure) -> list[tuple[Text, Text]]:
    """The pairs of drawn texts of ``fig`` whose boxes overlap by more than a point each way (two
    labels run together, a title on a tick label), once it is laid out (call after a draw)."""
    import itertools

    slack = fig.dpi / 72
    boxes = [(text, text.get_window_extent()) for text in _texts(fig) if text.axes is None or text.axes.axison]
    return [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2)
            if min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0) > slack
            and min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0) > slack]


def _shrink_texts(fig: Figure) -> bool:
    """Every text of ``fig`` above its floor one point smaller (not under it); whether one changed."""
    changed = False
    ticks = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = [label for tick in axis.get_major_ticks() for label in (tick.label1, tick.label2)]
            ticks |= {id(label) for label in labels}
            shown = [label for label in labels if label.get_visible() and label.get_text()]
            if not shown:
                continue
            size = max(label.get_fontsize() for label in shown)
            floor = MIN_MATH_PT if any(_has_math(label.get_text()) for label in shown) else MIN_TEXT_PT
            if size > floor:
                axis.set_tick_params(which="major", labelsize=max(floor, size - 1))
                changed = True
    for text in _texts(fig):
        floor = MIN_MATH_PT if _has_math(text.get_text()) else MIN_TEXT_PT
        if id(text) not in ticks and text.get_fontsize() > floor:
            text.set_fontsize(max(floor, text.get_fontsize() - 1))
            changed = True
    return changed


def break_lines(text: str, room: float, width: Callable[[str], float]) -> list[str]:
    """``text`` broken at spaces into lines no wider than ``room``, as ``width`` measures a line (a
    word wider than the room keeps a line of its own); its own line breaks kept. (matplotlib's
    ``wrap=True`` wraps at the figure's edge only, not in a room of our choosing.)"""
    lines = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            longer = f"{line} {word}" if line else word
            if line and width(longer) > room:
                lines.append(line)
                line = word
            else:
                line = longer
        lines.append(line)
    return lines


def wrap_axis_label(ax, axis: str = "y") -> None:
    """Break ``ax``'s ``axis`` label in two lines (at its middle space) when it is longer than the
    axes beside it (a y label taller than a low plot runs off the figure's top and bottom): call it
    once the figure has its final size (from a :func:`before_save` step), before
    :func:`shrink_to_fit`."""
    ax.figure.draw_without_rendering()
    label = getattr(ax, f"{axis}axis").label
    words = label.get_text().split(" ")
    box, room = label.get_window_extent(), ax.get_window_extent()
    long = box.height > room.height if axis == "y" else box.width > room.width
    if long and len(words) > 1 and "\n" not in label.get_text():
        half = (len(words) + 1) // 2
        label.set_text(" ".join(words[:half]) + "\n" + " ".join(words[half:]))


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
