"""Heatmap figures at the size they are placed: token labels never collide, and no text of the
heatmap kinds is under 7 pt or runs off its figure, at every height a lecturer may use, in 4:3 and
16:9 (issue 22, items 1 and 5). Boxes are matplotlib's own glyph boxes, once the figure is saved."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from filters.blocks.labels import LABELS
from filters.blocks.options import parse_options
from filters.blocks.page import page_for
from filters.errors import BlockError
from filters.figures.heatmap import attention_heatmap, heatmap_width, weights_colorbar, widened
from filters.figures.render import MIN_TEXT_PT, _texts, deck_style, render, save, slide_figure
from filters.kinds import KINDS

PAGES = {aspect: page_for("Madrid", aspect) for aspect in ("43", "169")}
# The sizes each layout test tries (a grid of every height on both pages took 12 minutes): the low
# and the tall one on 4:3, the default on 16:9 (whose percentages are lower still).
SIZES = [("40%", "43"), ("85%", "43"), ("66%", "169")]
SHORT = "el gato se sentó en la alfombra roja".split()
LONG = ("palabra larguísima extraordinariamente inesperado transformador atención posicional "
        "representación").split()


def _tokens(count: int, words: list[str]) -> list[str]:
    return [words[i % len(words)] + ("" if i < len(words) else str(i)) for i in range(count)]


def _collisions(texts) -> list[tuple[str, str]]:
    """Pairs of texts whose drawn boxes cross by more than a point each way, as the build's own
    check (filters.figures.render.overlapping_texts) counts them: a box holds a line's whole height,
    so neighbours' boxes may share a hair of it while their glyphs stand apart."""
    boxes = [(t.get_text(), t.get_window_extent()) for t in texts]
    found = []
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        across = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        up = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        slack = texts[0].figure.dpi / 72
        if across > slack and up > slack:
            found.append((a, b))
    return found


def _tick_labels(ax, axis: str) -> list:
    """The drawn tick labels of ``ax``'s ``axis`` ("x" or "y"), on both sides (the heatmap puts
    every other one on the opposite side when room is short)."""
    shown = {id(t) for t in _texts(ax.figure)}
    return [t for a in (ax, *ax.child_axes) for t in getattr(a, f"get_{axis}ticklabels")() if id(t) in shown]


@pytest.mark.parametrize(("height", "aspect"), [("40%", "43"), ("66%", "169")])
@pytest.mark.parametrize("words", [SHORT, LONG], ids=["short", "long"])
@pytest.mark.parametrize("count", [4, 12, 29, 40])
def test_token_labels_never_collide(tmp_path, count, words, height, aspect):
    """Before: a 7-token heatmap slanted its key labels at 40°, whose boxes cross their neighbours'
    (and 'el'/'gato' touched); labels of 29 tokens sat 5 pt apart."""
    tokens = _tokens(count, words)
    weights = np.random.default_rng(count).dirichlet(np.ones(count), size=count)
    with deck_style(PAGES[aspect]):
        fig = slide_figure(widened((4.2, 3.2), height, heatmap_width(count)), height)
        ax = fig.add_subplot()
        heatmap = attention_heatmap(ax, weights, tokens, tokens, labels=LABELS["es"], scale=1.0)
        weights_colorbar(fig, heatmap, ax=ax, labels=LABELS["es"], fraction=0.06, pad=0.03)
        save(fig, tmp_path / "h.pdf")  # raises when a text runs off
    fig.draw_without_rendering()
    for axis in ("x", "y"):
        labels = _tick_labels(ax, axis)
        assert len(labels) >= 3, f"{axis}: too few labels left ({len(labels)})"
        assert all(t.get_fontsize() >= MIN_TEXT_PT for t in labels)
        assert not _collisions(labels), f"{axis} labels collide: {_collisions(labels)[:3]}"
        shown = [t.get_text() for t in labels]
        assert all(label in tokens or (label.endswith("…") and any(t.startswith(label[:-1]) for t in tokens))
                   for label in shown), "each label is its token's (a long one clipped)"
    assert all(t.get_fontsize() >= MIN_TEXT_PT for t in _texts(fig))


# Each kind of the heatmap family at its limits (tests/decks/limits.md) and at a common size.
CASES = {
    "attention-7": ("attention", {}, " ".join(SHORT[:7])),
    "attention-40": ("attention", {}, " ".join(_tokens(40, LONG))),
    "multihead-8x7": ("multihead", {"heads": "8", "d_model": "16"}, " ".join(SHORT[:7])),
    "multihead-2x12": ("multihead", {"heads": "2", "d_model": "16"}, " ".join(_tokens(12, SHORT))),
    "block-16": ("block", {"heads": "8", "d_model": "16"}, " ".join(_tokens(16, SHORT))),
    "permutation-16": ("permutation", {}, " ".join(_tokens(16, SHORT))),
    "trained-8": ("trained-attention", {"steps": "30"}, ""),
    "trained-12x8": ("trained-attention", {"seq_len": "12", "heads": "8", "steps": "20", "d_model": "16"}, ""),
    "trained-per-head": ("trained-attention", {"heads": "4", "per_head": "true", "steps": "30"}, ""),
}
_DATA: dict = {}
# Still wrong (issue 22, open): what remains at 40 % high.
OPEN_AT_40 = {
    ("multihead-8x7", "40%"): "two rows of four panels in about 100 pt: the panels' titles run off in 4:3",
    ("trained-8", "40%"): "the two-line y name spans the figure's height and meets its title",
}


def _case(name: str, height: str):
    kind_name, attributes, body = CASES[name]
    kind = KINDS[kind_name]
    options = parse_options(kind.options, {**attributes, "height": height}, body)
    if name not in _DATA:  # the numbers do not depend on the height
        _DATA[name] = kind.compute(options)
    return kind, _DATA[name], options


def _check_texts(fig) -> None:
    fig.draw_without_rendering()
    texts = _texts(fig)
    small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < MIN_TEXT_PT * 0.999]
    assert not small, f"under {MIN_TEXT_PT} pt: {small[:5]}"
    ticks = [t for ax in fig.axes for axis in "xy" for t in _tick_labels(ax, axis)]
    assert not _collisions(ticks), f"tick labels collide: {_collisions(ticks)[:3]}"
    names = [t for t in texts if t not in ticks and t.get_text() not in {"0.00", "0.01"}]
    names = [t for t in names if not t.get_text().replace(".", "").isdigit()]  # cell numbers sit in cells
    assert not _collisions(names), f"names collide: {_collisions(names)[:3]}"


@pytest.mark.parametrize(("height", "aspect"), SIZES)
@pytest.mark.parametrize("name", CASES)
def test_heatmap_kinds_read_at_every_height(tmp_path, name, height, aspect):
    """Before: .trained-attention's title ran 17–28 pt off its figure at the default height, and at
    40% every kind's axis names ran off or collapsed the layout."""
    if (name, height) in OPEN_AT_40:
        pytest.xfail(OPEN_AT_40[name, height])
    kind, data, options = _case(name, height)
    fig = render(kind, data, options, tmp_path / "f.pdf", lang="es", page=PAGES[aspect])  # raises: runs off
    _check_texts(fig)


# In half a column, a single heatmap reads; a figure of several panels may not fit there (four heads
# in 160 pt), and then the build says so, naming the texts that would collide or run off.
READS_IN_A_COLUMN = {"attention-7", "trained-8"}


@pytest.mark.parametrize(("height", "aspect"), [("66%", "43"), ("85%", "169")])
@pytest.mark.parametrize("name", CASES)
def test_heatmap_kinds_in_a_half_column_read_or_say_they_cannot(tmp_path, name, height, aspect):
    """A ``::: column`` of half the text width: as high, half as wide. The figure reads by every
    check above, or saving it is an error (the build names the block): never a broken figure in
    silence."""
    kind, data, options = _case(name, height)
    try:
        fig = render(kind, data, options, tmp_path / "f.pdf", lang="es", page=PAGES[aspect].within(0.5))
    except BlockError as exc:
        assert name not in READS_IN_A_COLUMN, str(exc)
        assert "on top of each other" in str(exc) or "off its edge" in str(exc) or "under 7 pt" in str(exc)
        assert not (tmp_path / "f.pdf").exists()
        return
    _check_texts(fig)


def test_block_names_its_bars_rows_and_keeps_its_colour_bar_name_clear(tmp_path):
    """Before: the bars had no token names and the colour bar's name touched the bar chart."""
    kind, data, options = _case("block-16", "66%")
    fig = render(kind, data, options, tmp_path / "b.pdf", lang="es", page=PAGES["43"])
    fig.draw_without_rendering()
    heat_ax, bar_ax = fig.axes[0], fig.axes[1]
    bar_names = [t.get_text() for t in bar_ax.get_yticklabels() if t.get_text()]
    heat_names = [t.get_text() for t in _tick_labels(heat_ax, "y")]
    assert bar_names and sorted(bar_names) == sorted(heat_names), "the bars' rows are named as the heatmap's"
    colorbar = next(ax for ax in fig.axes if hasattr(ax, "_colorbar"))
    name = colorbar.yaxis.label.get_window_extent()
    nearest = min(t.get_window_extent().x0 for t in bar_ax.get_yticklabels() if t.get_text())
    assert nearest - name.x1 >= 3 * fig.dpi / 72, "at least 3 pt between the colour bar's name and the bars' names"
    assert colorbar.yaxis.label.get_fontsize() >= 9
