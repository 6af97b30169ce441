"""The text area figures are drawn for (filters.blocks.page) is the one LaTeX gives the frame: measured
again with pandoc's Beamer template and pdfLaTeX, and narrowed inside pandoc's columns."""

from __future__ import annotations

import re
import subprocess

import panflute as pf
import pytest
from conftest import needs_latex

from filters.blocks.page import DEFAULT_PAGE, page_for
from filters.pandoc.parse import column_share
from filters.util.pandoc import pandoc_path


@pytest.mark.e2e
@needs_latex
@pytest.mark.parametrize(("theme", "aspect"), [("Madrid", "43"), ("Madrid", "169"), ("Warsaw", "43"),
                                               ("metropolis", "1610"), ("Berkeley", "169"), (None, "43")])
def test_the_page_is_the_text_area_latex_gives_a_frame(tmp_path, theme, aspect):
    meta = f"theme: {theme}\n" if theme else ""
    (tmp_path / "d.md").write_text(f"---\n{meta}aspectratio: {aspect}\n---\n\n# T\n\n"
                                   "`\\typeout{AREA \\the\\textwidth\\space\\the\\textheight}`{=latex}\n")
    subprocess.run([pandoc_path(), "-t", "beamer", "-s", "d.md", "-o", "d.tex"], cwd=tmp_path, check=True)
    subprocess.run(["pdflatex", "-interaction=nonstopmode", "d.tex"], cwd=tmp_path, capture_output=True, timeout=120)
    width, height = map(float, re.search(r"AREA ([\d.]+)pt ([\d.]+)pt", (tmp_path / "d.log").read_text()).groups())
    page = page_for(theme, aspect)
    assert (page.text_width, page.text_height) == pytest.approx((width, height), abs=0.01)


def test_an_unknown_theme_or_aspect_gets_the_default_margins_on_4_3_paper():
    assert page_for("NoSuchTheme", "169") == page_for(None, "169")
    assert page_for("Madrid", "77").text_height == DEFAULT_PAGE.text_height


def test_a_block_in_columns_has_their_share_of_the_width():
    doc = pf.convert_text(":::: columns\n::: {.column width=\"40%\"}\n```{.attention}\nel gato\n```\n:::\n"
                          "::: column\n```{.attention}\nel perro\n```\n:::\n::::\n\n```{.attention}\nsolo\n```\n",
                          standalone=True, pandoc_path=pandoc_path())
    blocks = []
    doc.walk(lambda elem, _: blocks.append(elem) if isinstance(elem, pf.CodeBlock) else None)
    assert [column_share(b) for b in blocks] == pytest.approx([0.4, 0.48, 1.0])  # no width: pandoc's 0.48
    assert DEFAULT_PAGE.within(0.48).text_width == pytest.approx(342.43532 * 0.48, abs=0.01)
