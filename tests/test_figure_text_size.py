"""Figure text at a real size: every glyph of every figure at least 7 pt on the page, measured in the
built PDFs (pdfplumber reads each glyph's size as placed, after LaTeX scaled the figure), for both
lectures and a deck with every kind at its limits, on 4:3 and 16:9 frames.

A frame's body text is 10.9 pt; under 7 pt a label cannot be read from the back of a hall. Figures
are drawn at the size they are placed (:func:`filters.figures.render.placed_size`) with fonts chosen
in page points, so this holds by construction, and breaks the day a kind draws at another size, a
label is set smaller, or LaTeX scales a figure that was drawn for more room.
"""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
from conftest import DECKS, LECTURES, figure_glyphs, needs_latex, skip_without_model

LEAST_PT = 7.0
ASPECTS = ("43", "169")


def too_small(pdf: Path) -> dict[int, str]:
    """Per page, the figure glyphs under :data:`LEAST_PT` (with their sizes)."""
    found = collections.defaultdict(list)
    for page, char, size in figure_glyphs(pdf):
        if size < LEAST_PT - 0.05:  # pdfplumber's sizes carry rounding of the placement matrix
            found[page].append(f"{char}:{size:.1f}")
    return {page: " ".join(chars[:30]) for page, chars in found.items()}


def build_at(deck: Path, aspect: str, work: Path) -> Path:
    """``deck`` built from ``work`` on frames of ``aspect`` (Beamer's aspectratio), its cache there."""
    from filters.pipeline.build import build

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        return work / build(deck, Path("build"), pandoc_options=["-M", f"aspectratio={aspect}"])


@pytest.mark.e2e
@needs_latex
@pytest.mark.parametrize("aspect", ASPECTS)
def test_every_kind_at_its_limits_has_no_figure_text_under_7_pt(tmp_path, aspect):
    skip_without_model()
    pdf = build_at(DECKS / "limits.md", aspect, tmp_path)
    glyphs = figure_glyphs(pdf)
    assert len({page for page, _, _ in glyphs}) >= 12  # every figure's text was found
    assert too_small(pdf) == {}


@pytest.mark.e2e
@needs_latex
@pytest.mark.parametrize("lecture", LECTURES, ids=lambda p: p.stem)
def test_the_lectures_on_16_9_frames_have_no_figure_text_under_7_pt(tmp_path, lecture):
    """(On 4:3 frames, as they ship: tests/test_slides_build.py measures the lectures it builds.)"""
    skip_without_model()
    pdf = build_at(lecture, "169", tmp_path)
    assert len({page for page, _, _ in figure_glyphs(pdf)}) >= 10
    assert too_small(pdf) == {}


def test_the_measure_sees_a_small_label(tmp_path):
    """The measure itself: a figure's 5 pt and 10 pt labels are read at 5 and 10 pt."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1))
    fig.text(0.1, 0.5, "tiny", fontsize=5)
    fig.text(0.1, 0.2, "body", fontsize=10)
    fig.savefig(tmp_path / "f.pdf")
    sizes = {c: round(s, 1) for _, c, s in figure_glyphs(tmp_path / "f.pdf")}
    assert sizes["t"] == 5.0 and sizes["b"] == 10.0


@pytest.mark.e2e
@needs_latex
def test_a_lecturers_own_english_deck_has_no_figure_text_under_7_pt(tmp_path):
    """An English 16:9 deck of a lecturer's own: columns, two figures of one block, math labels."""
    pdf = build_at(DECKS / "english-16x9.md", "169", tmp_path)
    assert len({page for page, _, _ in figure_glyphs(pdf)}) >= 7
    assert too_small(pdf) == {}
