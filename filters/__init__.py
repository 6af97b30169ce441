"""attnslides' Pandoc filter: live attention figures computed by :mod:`engine` at build time.

A kind of live block is one file in :mod:`filters.kinds` (a :class:`filters.kind.Kind` record: its
options, compute, drawing or text, captions, cost). The stages every block goes through, one module
each, are shared by all kinds:

1. :mod:`filters.options`  parsing a block's attributes, body and metadata into its typed options
2. :mod:`filters.cache`    the content-addressed cache of figures and data: keys, atomic entries
3. :mod:`filters.jobs`     computing and drawing the blocks that miss the cache, in warm workers
4. :mod:`filters.render`   the deck's style and the drawing helpers kinds share (imports matplotlib)
5. :mod:`filters.filter`   the panflute filter: prepare / action / finalize / main
6. :mod:`filters.build`    deck → pandoc → .tex → LaTeX (:mod:`filters.texrun`) → PDF; :mod:`filters.cli`
   its commands, :mod:`filters.watch` rebuilding on save

Importing this package, the registry, :mod:`filters.options`, :mod:`filters.cache` or
:mod:`filters.filter` imports neither torch nor matplotlib: a build whose figures are all cached
never pays for them.
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
