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
