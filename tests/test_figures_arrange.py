"""Several figures of one block share its frame (filters.figures.render.arrange, .run's layout-ncol):
side by side when that makes them larger, the rows dividing the height; each keeps its caption."""

from __future__ import annotations

import json
from pathlib import Path

import panflute as pf
import pytest
from conftest import DECKS, figure_glyphs, figures_of, filter_deck, needs_latex

from filters.blocks.page import page_for
from filters.figures.render import COLUMN_GAP, ROW_GAP_PT, arrange, deck_style

MADRID = page_for("Madrid", "43")  # 342.44 × 260.48 pt of text
WIDE = page_for("Madrid", "169")   # 433.48 × 243.41 pt


def test_two_landscape_figures_stand_side_by_side_each_in_its_column():
    with deck_style(MADRID):
        ncol, sizes = arrange([(4.4, 2.8), (4.4, 2.8)], "66%")
    assert ncol == 2
    column = (342.43532 - 1) * (1 - COLUMN_GAP) / 2 / 72.27  # inches: 0.48 of the text width
    for width, height in sizes:
        assert width == pytest.approx(column)
        assert height == pytest.approx(column * 2.8 / 4.4)
    # stacked instead, each would be shorter: (0.66 × 260.48 − 24) / 2 pt high
    stacked = (0.66 * 260.48 - ROW_GAP_PT) / 2 / 72.27
    assert sizes[0][0] * sizes[0][1] > stacked * (stacked * 4.4 / 2.8)


def test_figures_with_something_between_them_are_stacked_and_share_the_height():
    with deck_style(MADRID):
        ncol, sizes = arrange([(4.4, 2.8), (3, 2)], "66%", together=False)
    assert ncol == 1
    assert [h * 72.27 for _, h in sizes] == pytest.approx([(0.66 * 260.48 - ROW_GAP_PT) / 2] * 2)


def test_wide_strips_go_one_per_row_and_the_lecturer_may_say_how_many_in_a_row():
    with deck_style(WIDE):
        assert arrange([(6, 1.2)] * 2, "70%")[0] == 1  # two wide strips: one above the other is larger
        ncol, sizes = arrange([(4, 3)] * 3, "70%", ncol=3)
    assert ncol == 3 and all(w * 72.27 <= (433.48404 - 1) / 3 for w, _ in sizes)


def test_a_block_of_two_figures_writes_them_in_columns(build_dirs, monkeypatch):
    deck = DECKS / "run-side-by-side.md"
    doc = filter_deck(deck, build_dirs, monkeypatch)
    rows = [e for e in doc.content if isinstance(e, pf.Div) and "columns" in e.classes]
    assert len(rows) == 1
    columns = [c for c in rows[0].content if "column" in c.classes]
    assert [c.attributes["width"] for c in columns] == ["48%", "48%"]
    captions = [pf.stringify(c.content[0].caption) for c in columns]
    assert captions == ["La primera: una recta, con su leyenda.", "La segunda: una parábola, con la suya."]
    entries = [json.loads(p.read_text()) for p in figures_of(deck, build_dirs).glob("*.json")]
    assert sorted((d["figures"], d["ncol"]) for d in entries) == [(2, 2), (3, 1)]


@pytest.mark.e2e
@needs_latex
def test_two_figures_side_by_side_fit_their_frame_at_full_size(tmp_path, monkeypatch):
    """Built: the frame does not overflow (the build would fail), the two figures' glyphs lie in two
    columns at the same height, and their text is drawn at the style's sizes (8 pt ticks and up)."""
    from test_errors import build_deck

    pdf = build_deck("run-side-by-side.md", tmp_path, monkeypatch)
    import pdfplumber

    with pdfplumber.open(pdf) as document:
        chars = [c for c in document.pages[1].chars if "DejaVu" in c["fontname"]]
    left = [c for c in chars if c["x1"] < document.pages[1].width / 2]
    right = [c for c in chars if c["x0"] > document.pages[1].width / 2]
    assert left and right and len(left) + len(right) == len(chars)
    assert abs(min(c["top"] for c in left) - min(c["top"] for c in right)) < 6
    assert min(size for page, _, size in figure_glyphs(pdf) if page == 2) >= 7.95
    assert Path(pdf).exists()


def _run_deck(tmp_path, body: str) -> Path:
    deck = tmp_path / "d.md"
    deck.write_text(f"---\ntitle: D\nlang: es\n---\n\n# Figuras\n\n```{{.python .run #f}}\n{body}\n```\n")
    return deck


def test_layout_ncol_given_puts_figures_in_a_row_and_what_came_between_after_it(build_dirs, monkeypatch, tmp_path):
    deck = _run_deck(tmp_path, "#| layout-ncol: 3\n#| fig-cap: [\"uno\", \"dos\", \"tres\"]\nplt.figure(); plt.plot([1, 2, 3])\n"
                               "slide.text(\"Entre las figuras.\")\nplt.figure(); plt.plot([3, 2, 1])\n"
                               "plt.figure(); plt.plot([1, 3, 2])")
    doc = filter_deck(deck, build_dirs, monkeypatch)
    body = [e for e in doc.content if not isinstance(e, pf.Header)]
    assert [type(e).__name__ for e in body] == ["Div", "Para"], "the row, then the text that came between"
    assert [pf.stringify(c.content[0].caption) for c in body[0].content] == ["uno", "dos", "tres"]
    assert pf.stringify(body[1]).strip() == "Entre las figuras."


def test_one_caption_for_several_figures_goes_under_the_last(build_dirs, monkeypatch, tmp_path):
    deck = _run_deck(tmp_path, "#| layout-ncol: 1\n#| caption: \"Una leyenda para todas\"\n"
                               "for k in range(2):\n    plt.figure(); plt.plot(np.arange(10) ** k)")
    doc = filter_deck(deck, build_dirs, monkeypatch)
    figures = [e for e in doc.content if isinstance(e, pf.Figure)]
    assert len(figures) == 1 and pf.stringify(figures[0].caption) == "Una leyenda para todas"
    assert figures[0].identifier.endswith("-2") or figures[0].identifier == "f", "the last figure's"
    assert len([e for e in doc.content if isinstance(e, (pf.Figure, pf.Para, pf.RawBlock))]) == 2


def test_a_run_figures_tick_labels_that_collide_are_an_error_naming_its_size(build_dirs, monkeypatch, tmp_path):
    """Long category names on six small panels ran into one another in silence ("aaveryvlong…")."""
    from filters.errors import BlockError

    deck = _run_deck(tmp_path, "fig, axs = plt.subplots(2, 3)\nfor ax in axs.flat:\n"
                               "    ax.bar([\"una categoría larga A\", \"una categoría larga B\", \"C\"], [1, 2, 3])")
    with pytest.raises(BlockError) as caught:
        filter_deck(deck, build_dirs, monkeypatch)
    message = str(caught.value)
    assert "figure 1 (drawn" in message and "pt, as placed)" in message
    assert "on top of each other" in message or "off its edge" in message
