"""What every figure is checked for when it is saved (filters.figures.render.save): no text off its
edge, no two texts on one another (a kind's figure), math large enough for its scripts; and what a
.run block's figures get: drawn at their placed size, no text under 7 pt."""

from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from filters.blocks.page import page_for  # noqa: E402
from filters.errors import BlockError  # noqa: E402
from filters.figures.render import MIN_MATH_PT, MIN_TEXT_PT, deck_style, placed_size, save  # noqa: E402


def test_a_label_longer_than_its_axis_is_an_error_naming_it(tmp_path):
    with deck_style():
        fig = Figure(figsize=(3, 1.2), layout="constrained")
        ax = fig.add_subplot()
        ax.set_ylabel("una etiqueta del eje mucho más larga que el eje")
        with pytest.raises(BlockError, match="«una etiqueta del eje mucho más larga que el eje» runs [0-9]+ pt off"):
            save(fig, tmp_path / "f.pdf")
    assert not (tmp_path / "f.pdf").exists()


def test_two_texts_on_one_another_are_an_error_in_a_kinds_figure_but_not_in_a_run_block(tmp_path):
    with deck_style():
        fig = Figure(figsize=(3, 2))
        fig.text(0.3, 0.5, "perro")
        fig.text(0.32, 0.5, "gato")
        with pytest.raises(BlockError, match="«perro» and «gato» would be drawn on top of each other"):
            save(fig, tmp_path / "f.pdf")
        save(fig, tmp_path / "f.pdf", apart=False)  # a .run block's own design
    assert (tmp_path / "f.pdf").exists()


def test_math_is_drawn_large_enough_for_its_scripts_to_be_7_pt(tmp_path):
    with deck_style():
        fig = Figure(figsize=(3, 2), layout="constrained")
        ax = fig.add_subplot()
        ax.set_yscale("log")
        ax.plot([1, 2, 3], [1, 100, 10_000])
        ax.set_xlabel("$d_k$", fontsize=8)
        save(fig, tmp_path / "f.pdf")
    assert ax.xaxis.label.get_fontsize() == pytest.approx(MIN_MATH_PT)
    ticks = [t for t in ax.get_yticklabels() if t.get_text()]
    assert ticks and all(t.get_fontsize() >= MIN_MATH_PT - 1e-9 for t in ticks), "10^k tick labels"
    assert MIN_MATH_PT * 0.7 == pytest.approx(MIN_TEXT_PT)


def test_a_run_blocks_figure_is_drawn_at_its_placed_size_and_small_text_raised(tmp_path):
    """Read back from the PDF (pdfplumber): its page is the placed size, its 4 pt title 7 pt."""
    import pdfplumber
    from conftest import figure_glyphs

    from filters.figures.sandbox import execute

    code = ("plt.figure(figsize=(8, 4))\nplt.plot([0, 1], [0, 1])\nplt.title('tiny', fontsize=4)\n"
            "slide.data(room=list(slide.size))\n")
    page = page_for("Madrid", "169")
    data = execute(code, seed=0, device="cpu", lang="es", height="50%", folder=tmp_path, ext="pdf", page=page)
    with deck_style(page):
        width, height = placed_size((8, 4), "50%")
    assert data["heights"] == [f"{height * 72.27:.2f}pt"]
    assert data["data"]["room"] == pytest.approx([page.width_inches, page.inches("50%")])
    with pdfplumber.open(tmp_path / "figure-1.pdf") as pdf:
        assert (pdf.pages[0].width, pdf.pages[0].height) == pytest.approx((width * 72, height * 72), abs=0.5)
    sizes = {char: size for _, char, size in figure_glyphs(tmp_path / "figure-1.pdf")}
    assert sizes["t"] == pytest.approx(MIN_TEXT_PT, abs=0.05) and min(sizes.values()) >= MIN_TEXT_PT - 0.05
