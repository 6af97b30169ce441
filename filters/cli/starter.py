"""The starter deck that ``attnslides new DECK.md`` writes: one frame per kind of live block, from
each kind's own example (``Kind.examples``), in the deck's language. It builds as it is, so a
lecturer starts from slides that work and edits them."""

from __future__ import annotations

from filters.blocks.labels import LANGUAGES
from filters.kinds import KINDS

_TEXT = {
    "es": {
        "title": "Mi clase con attnslides",
        "intro": "# Cómo funciona\n\n* Cada bloque de código con una clase como `.attention` se calcula al compilar.\n"
                 "* `attnslides options` lista las opciones de cada bloque.\n"
                 "* `make slides` (o `attnslides build`) compila el PDF.",
    },
    "en": {
        "title": "My attnslides lecture",
        "intro": "# How it works\n\n* Every code block whose class is a kind, such as `.attention`, is computed as "
                 "the deck builds.\n* `attnslides options` lists every block's options.\n"
                 "* `make slides` (or `attnslides build`) builds the PDF.",
    },
}


def starter_deck(lang: str = "es") -> str:
    """The Markdown of the starter deck in ``lang`` (one of :data:`filters.labels.LANGUAGES`).

    Raises:
        ValueError: for a language we have no words for.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"no starter deck in {lang!r}; languages: {', '.join(LANGUAGES)}")
    text = _TEXT[lang]
    header = f'---\ntitle: "{text["title"]}"\nlang: {lang}\ntheme: "Madrid"\n---\n'
    # a kind that cannot run here (its model is not installed) would stop the deck's build
    frames = [text["intro"], *(kind.examples[lang] for kind in KINDS.values() if not kind.unavailable())]
    return header + "\n" + "\n\n".join(frames) + "\n"
