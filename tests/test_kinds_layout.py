"""Layout of the figure kinds at the size they are placed: measured from the texts' boxes once the
figure is laid out (``fig.draw_without_rendering()``), on real pages (a theme, an aspect ratio, a
column), never by eye. Each rule here was broken before its fix (issue 22, items 1 and 5)."""

from __future__ import annotations

import matplotlib
import pytest
from conftest import skip_without_model

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from filters.blocks.options import parse_options  # noqa: E402
from filters.blocks.page import page_for  # noqa: E402
from filters.figures.render import (  # noqa: E402
    MIN_TEXT_PT,
    _texts,
    deck_style,
    overlapping_texts,
    render,
    shrink_to_fit,
)
from filters.kinds import KINDS  # noqa: E402

PAGES = {"4:3": page_for("Madrid", "43"), "16:9": page_for("Madrid", "169"),
         "4:3 column": page_for("Madrid", "43").within(0.5), "16:9 column": page_for("Madrid", "169").within(0.5)}


def drawn(kind: str, attributes: dict, body: str, tmp_path, page, lang="es"):
    """``kind`` computed and rendered from a block's attributes and body, laid out."""
    kind_ = KINDS[kind]
    options = parse_options(kind_.options, attributes, body).in_language(lang)
    fig = render(kind_, kind_.compute(options), options, tmp_path / "f.png", lang=lang, page=page)
    with deck_style(page):  # laid out again as it was saved: in the deck's style (its fonts, its sizes)
        fig.draw_without_rendering()
    return fig


def assert_readable(fig):
    """Every text inside the figure, none under 7 pt, no two running together."""
    bounds = fig.bbox.padded(fig.dpi / 72)
    for text in _texts(fig):
        assert text.get_fontsize() >= MIN_TEXT_PT - 1e-9, text.get_text()
        box = text.get_window_extent()
        assert bounds.x0 <= box.x0 and box.x1 <= bounds.x1 and bounds.y0 <= box.y0 and box.y1 <= bounds.y1, \
            text.get_text()
    assert [(a.get_text(), b.get_text()) for a, b in overlapping_texts(fig)] == []


def test_shrink_to_fit_lowers_fonts_to_fit_never_under_7_pt():
    fig = Figure(figsize=(1.6, 1.2), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlabel("a label a little wider than its axis")
    shrink_to_fit(fig)
    assert 7.0 <= ax.xaxis.label.get_fontsize() < 10.0  # smaller, as much as needed, not under 7
    roomy = Figure(figsize=(6, 3), layout="constrained")
    roomy.add_subplot().set_xlabel("short")
    shrink_to_fit(roomy)
    assert roomy.axes[0].xaxis.label.get_fontsize() == 10.0  # room enough: the style's size


@pytest.mark.parametrize("where", ["4:3", "16:9", "4:3 column"])
@pytest.mark.parametrize("height", ["40%", "66%", "85%"])
def test_posenc_is_readable_and_its_legend_is_clear_of_the_curves(tmp_path, where, height):
    fig = drawn("posenc", {"height": height, "num_positions": "100", "d_model": "64", "dims": "4,5,16,17"}, "",
                tmp_path, PAGES[where])
    assert_readable(fig)
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None:
            assert legend.get_texts()[0].get_fontsize() >= 9 or where == "4:3 column" or height == "40%"
            assert not legend.get_window_extent().overlaps(ax.get_window_extent()), "legend on the curves"


@pytest.mark.parametrize("where", PAGES)
@pytest.mark.parametrize("height", ["66%", "85%"])
def test_posenc_compare_and_its_colorbar_label_fit(tmp_path, where, height):
    fig = drawn("posenc-compare", {"height": height, "positions": "24", "d_model": "64"}, "", tmp_path, PAGES[where])
    assert_readable(fig)
    colorbar = fig.axes[-1]
    assert colorbar.yaxis.label.get_fontsize() >= 9  # near the body size: inner panels keep no ticks


@pytest.mark.parametrize("where", ["4:3", "16:9"])
def test_posenc_compare_low_has_its_panels_in_a_row_and_ticks_apart(tmp_path, where):
    """At 40 %, four panels in a 2 × 2 grid had their 0, 32, 63 running together (and in 16:9 the
    colour bar's label ran off)."""
    fig = drawn("posenc-compare", {"height": "40%", "positions": "64"}, "", tmp_path, PAGES[where])
    assert_readable(fig)
    panels = fig.axes[:-1]
    assert len({round(ax.get_position().y0, 2) for ax in panels}) == 1  # one row


def test_the_scaling_reference_line_is_drawn_under_the_curves(tmp_path):
    fig = drawn("scaling", {}, "", tmp_path, PAGES["4:3"])
    ax = fig.axes[0]
    *curves, reference = ax.lines
    assert reference.get_linestyle() == "--"
    assert reference.get_zorder() < min(line.get_zorder() for line in curves)
    assert not fig.legends[0].get_window_extent().overlaps(ax.get_window_extent()), "legend on the curves"
    assert_readable(fig)


@pytest.mark.parametrize(("where", "height"), [("4:3", "40%"), ("16:9", "40%"), ("16:9", "66%"),
                                               ("4:3 column", "66%"), ("4:3 column", "85%")])
def test_scaling_fits_low_figures_and_its_legend_clears_the_axis_label(tmp_path, where, height):
    """At 40 % its y label ran off (the legend under the axes left them no height); at 66 % in 16:9
    the legend lay on the x label."""
    fig = drawn("scaling", {"height": height, "d_k": "[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]"},
                "", tmp_path, PAGES[where])
    assert_readable(fig)
    legend = fig.legends[0] if fig.legends else fig.axes[0].get_legend()
    assert not legend.get_window_extent().overlaps(fig.axes[0].get_window_extent())


LONG = ("the quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat near the door and "
        "the bird sings in the tall green tree by the quiet river bank today at noon")


@pytest.mark.parametrize(("where", "height"), [("4:3", "40%"), ("16:9", "40%"), ("4:3", "66%"), ("16:9", "85%"),
                                               ("4:3 column", "66%"), ("16:9 column", "85%")])
def test_model_view_note_colour_bar_and_titles_fit(tmp_path, where, height):
    """At 40 % its colour bar's label ran off; in a column, its note; its colour bar's «1.0» lay
    on the last panel's title."""
    skip_without_model()
    fig = drawn("model-view", {"height": height}, LONG, tmp_path, PAGES[where])
    assert_readable(fig)


@pytest.mark.parametrize("where", ["4:3", "16:9", "4:3 column"])
def test_head_view_at_40_percent_names_every_other_token_rather_than_refuse(tmp_path, where):
    """At 40 % a head view of 15 tokens (even 8) was refused: its rows are closer than a label."""
    skip_without_model()
    sentence = "the quick brown fox jumps over the lazy dog while the cat sleeps"
    fig = drawn("head-view", {"height": "40%", "layer": "1"}, sentence, tmp_path, PAGES[where])
    assert_readable(fig)
    named = [t.get_text() for t in fig.axes[0].texts]
    assert "[CLS]" in named and len(named) < 2 * 15 + 2  # thinned: not every token named
    boxes = {t.get_text(): t.get_window_extent() for t in fig.axes[0].texts}
    assert boxes["query"].y0 >= boxes["[CLS]"].y1, "the column's name on its first token"
    assert min(t.get_fontsize() for t in _texts(fig)) >= 7.0


@pytest.mark.parametrize(("where", "height"), [("4:3 column", "66%"), ("16:9", "66%"), ("4:3", "40%"),
                                               ("16:9", "85%")])
def test_neuron_view_shows_fewer_dims_and_keys_rather_than_refuse(tmp_path, where, height):
    """It refused a 4:3 half column with dims=4, and 17 tokens at 66 % in 16:9; its math header
    ``q·k_j/√d_k`` (raised to 10 pt) lay on «softmax» and «…»."""
    skip_without_model()
    sentence = "the quick brown fox jumps over the lazy dog while the cat sleeps on it"
    fig = drawn("neuron-view", {"height": height, "head": "previous-token", "query": "cat", "dims": "4"},
                sentence, tmp_path, PAGES[where])
    assert_readable(fig)
    rows = [t.get_text() for t in fig.axes[0].texts if t.get_text().startswith("k «")]
    assert "k «cat»" in rows and "k «the»" in rows  # the query's own key and the one it attends to


@pytest.mark.parametrize(("where", "height"), [("4:3", "40%"), ("16:9", "40%"), ("4:3", "66%"), ("16:9", "66%"),
                                               ("4:3 column", "66%"), ("16:9", "85%")])
def test_embeddings_words_stand_off_their_markers_and_apart(tmp_path, where, height):
    """adjustText left «seis» on «siete», «verde» on «blanco», words on their own markers; at 40 %
    and in a column the two-line title ran off."""
    fig = drawn("embeddings", {"height": height}, "", tmp_path, PAGES[where])
    assert_readable(fig)
    ax = fig.axes[0]
    words = ax.texts
    shown = [t for t in words if t.get_visible()]
    centres = ax.transData.transform(ax.collections[0].get_offsets())  # the first topic's markers
    for text in shown:
        box = text.get_window_extent()
        assert not any(box.contains(x, y) for x, y in centres), f"«{text.get_text()}» on a marker"
    if height != "40%" and where != "4:3 column":
        assert len(shown) >= 0.9 * len(words)  # nearly every word where the figure has room
    assert len(shown) >= len(words) / 3


@pytest.mark.parametrize("where", ["4:3", "16:9"])
def test_head_view_title_and_tokens_fit_a_half_column(tmp_path, where):
    """transformers-2 puts two head views side by side: their two-line titles ran off the figure."""
    skip_without_model()
    fig = drawn("head-view", {"head": "previous-token"}, "the cat sat on the mat", tmp_path,
                PAGES[where].within(0.5))
    assert_readable(fig)
    assert min(t.get_fontsize() for t in _texts(fig)) >= 7.0


def test_worked_example_steps_take_no_room_before_they_are_shown():
    """``\\uncover`` kept the room of the steps not yet shown: the first overlay was a box (a
    theme's block) as tall as all four steps, with one line in it."""
    from filters.kinds.attention_steps import StepsOptions, beamer

    kind = KINDS["attention-steps"]
    data = kind.compute(StepsOptions(seed=2, length=6, d_k=6, d_v=6))
    text = beamer(data, precision=2)
    assert "\\uncover" not in text and "\\visible" not in text
    assert text.count("\\only<+->") == 4
