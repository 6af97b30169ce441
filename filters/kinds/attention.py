"""``.attention``: the self-attention weights of one sentence, as an annotated heatmap.

````markdown
```{.attention #fig-gato seed=0 d_model=16}
el gato se sentó en la alfombra
```
````
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from filters.blocks.kind import Kind, Matrix, as_list
from filters.blocks.options import FigureOptions, HeatmapOptions, option

# This kind's frame in the starter deck of `attnslides new`, in each language.
from filters.blocks.parsers import as_bool, as_int, optional
from filters.kinds._sentence import SentenceOptions

EXAMPLES = {
    "es": "# Auto-atención\n\n```{.attention #atencion}\nel gato se sentó en la alfombra\n```",
    "en": "# Self-attention\n\n```{.attention #attention}\nthe cat sat on the mat\n```",
}

@dataclass(frozen=True)
class AttentionOptions(FigureOptions, HeatmapOptions, SentenceOptions):
    """``.attention``: self-attention weights of one sentence, as an annotated heatmap.

    tokens → embedding (+ sinusoidal positions) → one self-attention head with seeded W_Q, W_K, W_V.
    """

    d_k: int | None = option(None, optional(as_int(1, 4096)), help="width of queries and keys (auto: d_model)")
    positional: bool = option(True, as_bool, help="add the sinusoidal positional encoding to the embeddings")
    causal: bool = option(False, as_bool, help="causal mask: each token sees only itself and earlier tokens")


class AttentionData(TypedDict):
    """What ``.attention`` computes (``<id>.json``): the inputs, then every step of eq. (1)."""

    kind: str
    sentence: str
    seed: int
    d_model: int
    d_k: int
    positional: bool
    causal: bool
    device: str
    tokens: list[str]  # L tokens
    q: Matrix  # (L, d_k)
    k: Matrix  # (L, d_k)
    v: Matrix  # (L, d_k)
    scale: float  # 1/√d_k
    mask: list[list[bool]] | None  # (L, L), True = may attend; None without a causal mask
    weights: Matrix  # (L, L), rows sum to 1
    output: Matrix  # (L, d_k)


def compute(options: AttentionOptions, device: str = "cpu") -> AttentionData:
    """Self-attention weights of ``options.sentence``.

    ``X = E + P`` (embedding + sinusoidal encoding, slide "Positional Encoding"),
    ``Q, K, V = X W_Q, X W_K, X W_V`` and ``A = softmax(QKᵀ/√d_k)`` (Vaswani et al. 2017, §3.2.1).
    """
    from engine.device import pick
    from engine.tokens import Vocabulary, tokenize
    from filters.kinds._sentence import make_head, self_attention

    dev = pick(device)
    tokens = tokenize(options.sentence)
    vocab = Vocabulary(tokens)
    d_k = options.d_k or options.d_model
    head = make_head(vocab, seed=options.seed, d_model=options.d_model, d_k=d_k, device=dev)
    steps = self_attention(tokens, vocab, head, positional=options.positional, causal=options.causal)
    return {
        "kind": "attention",
        "sentence": options.sentence, "seed": options.seed, "d_model": options.d_model, "d_k": d_k,
        "positional": options.positional, "causal": options.causal, "device": dev.type,
        "tokens": tokens,
        "q": as_list(steps.q), "k": as_list(steps.k), "v": as_list(steps.v),
        "scale": steps.scale,
        "mask": None if steps.mask is None else steps.mask.cpu().tolist(),
        "weights": as_list(steps.weights),
        "output": as_list(steps.output),
    }


def draw(data: AttentionData, options: AttentionOptions, labels: dict):
    """The heatmap (queries on rows, keys on columns) and its colorbar."""

    from filters.figures.heatmap import attention_heatmap, weights_colorbar
    from filters.figures.render import projected_scale, slide_figure

    L = len(data["tokens"])
    fig = slide_figure((4.2, 3.2) if L <= 12 else (5.6, 3.8), options.height)
    ax = fig.add_subplot()
    heatmap = attention_heatmap(ax, data["weights"], data["tokens"], data["tokens"], precision=options.precision,
                                annotate=options.annotate, cmap=options.cmap, labels=labels,
                                scale=projected_scale(fig, options.height))
    weights_colorbar(fig, heatmap, ax=ax, labels=labels, fraction=0.06, pad=0.03)
    return fig


KIND = Kind("attention", AttentionOptions, compute, output="figure", draw=draw, cost=1, examples=EXAMPLES, captions={
    "es": "Pesos de auto-atención de «{sentence}»: cada fila es un token que pregunta (query) y suma 1.",
    "en": "Self-attention weights of “{sentence}”: each row is a query token and sums to 1.",
})
