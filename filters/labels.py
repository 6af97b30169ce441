"""Every word a figure or a caption shows, in each language a deck may be written in.

The language is the deck's ``lang:`` metadata (``es``, ``es-ES`` …), or ``attnslides: lang:``.
No heavy imports: the filter reads default captions from here on every build.
"""

from __future__ import annotations

LABELS = {
    "es": {
        "query": "query (consulta)",
        "key": "key (clave)",
        "weight": "peso de atención",
        "position": "posición",
        "dimension": "dimensión",
        "value": "valor",
        "posenc_heat": "$P$: posiciones × dimensiones",
        "posenc_curves": "algunas dimensiones",
        "sin": "sen",
        "cos": "cos",
        "dim": "dim. {d} ({fn})",
        "original": "orden original",
        "permuted": "tokens permutados",
        "max_difference": "máx. |A′ − A permutada| = {:.0e}",
        "d_k": "$d_k$ (escala logarítmica)",
        "max_weight": "peso máximo medio",
        "unscaled": r"sin escalar: $QK^T$",
        "scaled": r"escalado: $QK^T/\sqrt{d_k}$",
        "uniform": "uniforme: 1/{keys} (n.º de claves)",
        "input": "entrada (key)",
        "output": "salida predicha (query)",
        "accuracy": "exactitud en {held_out} secuencias no vistas: {percent:.0f} %",
    },
    "en": {
        "query": "query",
        "key": "key",
        "weight": "attention weight",
        "position": "position",
        "dimension": "dimension",
        "value": "value",
        "posenc_heat": "$P$: positions × dimensions",
        "posenc_curves": "a few dimensions",
        "sin": "sin",
        "cos": "cos",
        "dim": "dim. {d} ({fn})",
        "original": "original order",
        "permuted": "permuted tokens",
        "max_difference": "max |A′ − permuted A| = {:.0e}",
        "d_k": "$d_k$ (log scale)",
        "max_weight": "mean largest weight",
        "unscaled": r"unscaled: $QK^T$",
        "scaled": r"scaled: $QK^T/\sqrt{d_k}$",
        "uniform": "uniform: 1/{keys} (number of keys)",
        "input": "input (key)",
        "output": "predicted output (query)",
        "accuracy": "exact match on {held_out} unseen sequences: {percent:.0f}%",
    },
}

# Captions of blocks that give none (an empty caption would print a bare "Figura 1:").
CAPTIONS = {
    "es": {
        "attention": "Pesos de auto-atención de «{sentence}»: cada fila es un token que pregunta (query) y suma 1.",
        "posenc": "Codificación posicional sinusoidal ($d_{{model}} = {d_model}$, base {base:g}).",
        "permutation": "Pesos de atención de «{sentence}» y de sus tokens permutados.",
        "scaling": "Peso máximo del softmax según $d_k$, con y sin dividir por $\\sqrt{{d_k}}$.",
        "trained-attention": "Atención aprendida al invertir secuencias de {seq_len} símbolos.",
    },
    "en": {
        "attention": "Self-attention weights of “{sentence}”: each row is a query token and sums to 1.",
        "posenc": "Sinusoidal positional encoding ($d_{{model}} = {d_model}$, base {base:g}).",
        "permutation": "Attention weights of “{sentence}” and of its permuted tokens.",
        "scaling": "Largest softmax weight against $d_k$, with and without dividing by $\\sqrt{{d_k}}$.",
        "trained-attention": "Attention learned by reversing sequences of {seq_len} symbols.",
    },
}


def language(lang: str | None) -> str:
    """``"es-ES"`` → ``"es"``; a language we have no words for falls back to English."""
    code = str(lang or "en").split("-")[0].lower()
    return code if code in LABELS else "en"


def default_caption(spec, lang: str) -> str:
    """The caption of a block that gives none, filled from its options."""
    return CAPTIONS[language(lang)][spec.kind].format(**vars(spec))
