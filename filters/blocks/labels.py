"""The languages a deck may be written in, and the words that several kinds' figures share.

A kind's own words (a legend, a title) live in its file (``Kind.labels``); the ones here are common
to every attention heatmap and axis. The language is the deck's ``lang:`` metadata (``es``,
``es-ES`` …), or ``attnslides: lang:``. No heavy imports: every build reads this module.
"""

from __future__ import annotations

LANGUAGES = ("es", "en")  # the first one is the reference every other must match

LABELS = {
    "es": {
        "query": "query (consulta)",
        "key": "key (clave)",
        "weight": "peso de atención",
        "position": "posición",
        "dimension": "dimensión",
        "value": "valor",
        "numbers_omitted": "sin cifras: no caben",
        "head": "cabeza {h}",
    },
    "en": {
        "query": "query",
        "key": "key",
        "weight": "attention weight",
        "position": "position",
        "dimension": "dimension",
        "value": "value",
        "numbers_omitted": "no numbers: too small",
        "head": "head {h}",
    },
}


def language(lang: str | None) -> str:
    """``"es-ES"`` → ``"es"``; a language we have no words for falls back to English."""
    code = str(lang or "en").split("-")[0].lower()
    return code if code in LABELS else "en"
