"""Where a figure is placed: the text area of the deck's Beamer frames, in TeX points.

A figure is drawn at the size it will have on the page (as tueplots sizes a figure for a paper's
column), so that a font of 8 pt in the figure is 8 pt on the slide. Its height is a share of the
frame's text height (``height: 66%``) or a length; its width at most the text width. Both depend on
the theme's margins and on the paper size Beamer's ``aspectratio`` chooses.

The numbers below were measured once with pandoc's Beamer template and pdfLaTeX (``\\the\\textwidth``,
``\\the\\textheight`` inside a frame; TeX Live 2022, Beamer 3.67): the 4:3 text area of each theme
that TeX Live ships, and the paper of each aspect ratio. A theme's margins are the same at every
aspect ratio, so its text area at another one is its 4:3 area plus the difference of the papers.
``tests/test_page.py`` measures them again for the lectures' theme and two others.
"""

from __future__ import annotations

from dataclasses import dataclass

from filters.blocks.parsers import slide_points

# Beamer's paper, width × height in TeX points, for each aspectratio (beamer.cls: 128 × 96 mm …).
PAPERS = {"43": (364.19536, 273.14662), "169": (455.24408, 256.07480), "1610": (455.24408, 284.52756),
          "149": (398.33858, 256.07480), "141": (422.52359, 298.75394), "54": (355.65944, 284.52756),
          "32": (384.11220, 256.07480)}

# Each theme's text area on 4:3 paper, width × height in TeX points (pandoc's template, pdfLaTeX).
_THEMES_43 = {
    "default": (307.28987, 269.14662), "AnnArbor": (342.43532, 249.41374), "Antibes": (307.28987, 240.14730),
    "Bergen": (258.54650, 269.14662), "Berkeley": (290.74263, 224.14662), "Berlin": (307.28987, 227.14734),
    "Boadilla": (342.43532, 260.48015), "CambridgeUS": (342.43532, 249.41374),
    "Copenhagen": (307.28987, 259.48018), "Darmstadt": (307.28987, 244.61385), "Dresden": (307.28987, 227.14734),
    "EastLansing": (342.43532, 249.41374), "Frankfurt": (307.28987, 252.88033),
    "Goettingen": (278.83713, 269.14662), "Hannover": (290.74263, 269.14662), "Ilmenau": (307.28987, 227.14734),
    "JuanLesPins": (307.28987, 244.08052), "Luebeck": (307.28987, 259.48018), "Madrid": (342.43532, 260.48015),
    "Malmoe": (307.28987, 259.48018), "Marburg": (278.83713, 269.14662), "Montpellier": (307.28987, 234.14730),
    "PaloAlto": (290.74263, 224.14662), "Pittsburgh": (307.28987, 269.14662),
    "Rochester": (307.28987, 224.14662), "Singapore": (307.28987, 256.14667), "Szeged": (307.28987, 221.81378),
    "Warsaw": (307.28987, 257.48018), "metropolis": (307.28987, 245.23030),
}


@dataclass(frozen=True)
class Page:
    """The text area of a deck's frames.

    Attributes:
        text_width, text_height: in TeX points (72.27 to the inch).
        name: how the cache key and messages name it (``"Madrid 4:3"``).
        height_43: the theme's text height on 4:3 paper, which percentages are designed for.
    """

    text_width: float
    text_height: float
    name: str = "Madrid 43"
    height_43: float = 260.48015

    def points(self, height: str) -> float:
        """A block's ``height`` (``"66%"`` of the text height, or a length: ``"5cm"``) in TeX points.

        A percentage is of the text height; on a frame shorter than the theme's 4:3 one (16:9) it
        shrinks once more by as much, so that what a percentage leaves for the title, a line of
        text and the caption is not less than on 4:3 (the default 66 % leaves 88 pt there: 16:9
        frames are 17 pt shorter, and a percentage of them alone overflowed)."""
        shrink = min(1.0, self.text_height / self.height_43) if height.endswith("%") else 1.0
        return slide_points(height, text_height=self.text_height) * shrink

    def inches(self, height: str) -> float:
        """The same height in inches, as matplotlib sizes a figure."""
        return self.points(height) / 72.27

    def within(self, share: float) -> Page:
        """The room of a block that has ``share`` of the text width (a Beamer column): as high, narrower."""
        if share >= 1:
            return self
        return Page(round(self.text_width * share, 3), self.text_height, name=f"{self.name} ×{share:g}",
                    height_43=self.height_43)

    @property
    def width_inches(self) -> float:
        """The widest a figure may be, in inches: the text width, less the half point that Beamer's
        figure environment takes off (``filters/latex/preamble.tex``) and a hair for rounding."""
        return (self.text_width - 1.0) / 72.27


def page_for(theme: str | None = None, aspect: str | int | None = None) -> Page:
    """The text area of frames in Beamer ``theme`` (``None``: the default theme; one not measured:
    the default's margins) on the paper of ``aspect`` (``"169"``, ``43``; ``None``: 4:3; one Beamer
    does not know: 4:3, as Beamer does)."""
    theme_name = theme if theme in _THEMES_43 else "default"
    ratio = str(aspect) if str(aspect) in PAPERS else "43"
    width, height = _THEMES_43[theme_name]
    paper, paper_43 = PAPERS[ratio], PAPERS["43"]
    return Page(round(width + paper[0] - paper_43[0], 3), round(height + paper[1] - paper_43[1], 3),
                name=f"{theme_name} {ratio}", height_43=height)


# Side by side, figures sit in columns of this share of the text width each, less a gap (pandoc's
# Beamer writer gives a column without a width 0.48 of the line: two of them and a 4 % gap).
COLUMN_GAP = 0.04


def share_in_row(ncol: int) -> float:
    """The share of the text width each of ``ncol`` figures side by side has (0.48 for two)."""
    return (1 - COLUMN_GAP * (ncol - 1)) / ncol


# The lectures' page (Madrid, 4:3): what a figure is drawn for when no deck says otherwise (a test,
# a figure drawn by hand).
DEFAULT_PAGE = page_for("Madrid", "43")
