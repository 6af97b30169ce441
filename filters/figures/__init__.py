"""Drawing the figures of live blocks, and what runs a block into its cache entry.

:mod:`~filters.figures.render` holds the deck's one style, sizes and saving (it imports matplotlib);
:mod:`~filters.figures.heatmap` the attention heatmaps every kind shares; :mod:`~filters.figures.matrices`
numbers and matrices as LaTeX (no heavy imports); :mod:`~filters.figures.entry` the one function
between a kind and its cache entry; :mod:`~filters.figures.sandbox` the ``.run`` blocks' own Python.
This module itself imports nothing heavy: the cache key reads the style file and the fonts from here.
"""

from pathlib import Path

# The one matplotlib style of every figure of a deck (part of each figure's cache key).
STYLE = Path(__file__).with_name("attnslides.mplstyle")

# Fonts for the characters the style's DejaVu Sans lacks (东京, 😀), as Debian installs them
# (fonts-noto-cjk, fonts-symbola; `make setup` does): used in figures where they are present.
FALLBACK_FONTS = {
    "Noto Sans CJK JP": Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    "Symbola": Path("/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf"),
}


def available_fallback_fonts() -> list[str]:
    """The fallback fonts installed here, in order (part of each figure's cache key)."""
    return [name for name, path in FALLBACK_FONTS.items() if path.is_file()]
