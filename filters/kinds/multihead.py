"""``.multihead``: the weights of every head of a multi-head attention layer on one sentence, side by
side on one colour scale (Vaswani et al. 2017, §3.2.2).

````markdown
```{.multihead #fig-cabezas heads=4}
el gato se sentó en la alfombra
```
````
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypedDict

from filters.blocks.kind import Kind, Matrix, as_list
from filters.blocks.options import FigureOptions, HeatmapOptions, option

# This kind's frame in the starter deck of `attnslides new`, in each language.
from filters.blocks.parsers import as_bool, as_choice, as_int, optional
from filters.errors import BlockError
from filters.kinds._pretrained import LAYERS, MODEL, MODEL_HELP
from filters.kinds._sentence import SentenceOptions

EXAMPLES = {
    "es": "# Varias cabezas\n\n```{.multihead #cabezas heads=4}\nel gato se sentó en la alfombra\n```",
    "en": "# Several heads\n\n```{.multihead #heads heads=4}\nthe cat sat on the mat\n```",
}


@dataclass(frozen=True)
class MultiheadOptions(FigureOptions, HeatmapOptions, SentenceOptions):
    """``.multihead``: the attention weights of each head of one multi-head attention layer
    (seeded W_Q, W_K, W_V, W_O) on a sentence, side by side, on one colour scale.

    tokens → embedding (+ sinusoidal positions) → ``engine.attention.MultiHeadAttention``."""

    max_tokens: ClassVar[int] = 12  # up to eight heatmaps share the slide
    heads: int = option(4, as_int(2, 8), help="number of heads H (2 to 8); must divide d_model")
    positional: bool = option(True, as_bool, help="add the sinusoidal positional encoding to the embeddings")
    causal: bool = option(False, as_bool, help="causal mask: each token sees only itself and earlier tokens")
    model: str = option("none", as_choice("none", MODEL), help=MODEL_HELP + "; `heads` shows its first heads")
    layer: int | None = option(None, optional(as_int(0, LAYERS - 1)), help="with model: the layer (default 0)")

    def validate(self) -> None:
        super().validate()
        if self.model != "none" and self.causal:
            raise BlockError("a real model's heads have their own weights: causal applies to the toy weights only "
                             "(model: none)", key="causal")
        if self.model == "none" and self.layer is not None:
            raise BlockError(f"layer chooses a layer of a real model: add model: {MODEL}", key="layer")
        if self.model == "none" and self.d_model % self.heads:
            raise BlockError(f"d_model = {self.d_model} must be divisible by heads = {self.heads}", key="heads")
        most = max_tokens_for(self.heads)
        if len(self.tokens) > most:
            raise BlockError(f"{self.heads} heads side by side label at most {most} tokens readably (at least 4 pt "
                             f"on the slide), and the sentence has {len(self.tokens)}: use fewer heads or a shorter "
                             "sentence", key="sentence")


def max_tokens_for(heads: int) -> int:
    """The longest sentence whose ``heads`` panels stay labelled at 4 pt or more at the default height
    (measured with Spanish words of up to eight letters; tests/test_errors.py draws each):
    two heads share the slide's width, three fit 11 columns each, four or more go in a grid of four
    columns."""
    return {2: 12, 3: 11}.get(heads, 7)


class MultiheadData(TypedDict):
    """What ``.multihead`` computes (``<id>.json``)."""

    kind: str
    sentence: str
    seed: int
    d_model: int
    heads: int
    d_k: int  # d_model / heads
    positional: bool
    causal: bool
    device: str
    tokens: list[str]  # L tokens
    x: Matrix  # (L, d_model): the layer's input, embeddings (+ positions)
    head_weights: list[Matrix]  # (H, L, L), each row sums to 1
    average_weights: Matrix  # (L, L): their mean over heads
    output: Matrix  # (L, d_model) = Concat(head_1, …, head_H) W_O (with model: of all the layer's heads)
    model: str  # "none", or the real model whose heads these are ("all-MiniLM-L6-v2")
    layer: int | None  # with model: the layer (from 0); its heads 0 … heads − 1 are shown


def compute(options: MultiheadOptions, device: str = "cpu") -> MultiheadData:
    """``MultiHead(X, X, X)`` with ``H`` heads of width ``d_k = d_model / H`` (§3.2.2): the embedding
    from ``seed``, the layer's weights from ``seed + 1``."""
    import torch

    from engine.attention import MultiHeadAttention
    from engine.device import pick
    from engine.embedding import TokenEmbedding
    from engine.tokens import Vocabulary
    from filters.kinds._sentence import embed

    if options.model != "none":
        return _real_heads(options)
    dev = pick(device)
    tokens = options.tokens
    vocab = Vocabulary(tokens)
    embedding = TokenEmbedding(len(vocab), options.d_model, seed=options.seed, tokens=vocab.itos).to(dev)
    attention = MultiHeadAttention(options.d_model, options.heads, seed=options.seed + 1).to(dev).eval()
    x = embed(tokens, vocab, embedding, positional=options.positional)  # (L, d_model)
    with torch.no_grad():
        output, weights = attention(x[None], is_causal=options.causal)  # (1, L, d_model), (1, H, L, L)
    return {
        "kind": "multihead", "sentence": options.sentence, "seed": options.seed, "d_model": options.d_model,
        "heads": options.heads, "d_k": options.d_model // options.heads, "positional": options.positional,
        "causal": options.causal, "device": dev.type,
        "tokens": tokens,
        "x": as_list(x),
        "head_weights": as_list(weights[0]),
        "average_weights": as_list(weights[0].mean(0)),
        "output": as_list(output[0]),
        "model": "none", "layer": None,
    }


def _real_heads(options: MultiheadOptions) -> MultiheadData:
    """The first ``heads`` heads of one layer of the pretrained model (it runs on the CPU)."""
    from filters.kinds._pretrained import D_K, MODEL_NAME, layer_steps

    layer = options.layer or 0
    steps = layer_steps(options.sentence, layer, max_tokens=max_tokens_for(options.heads))
    weights = steps.weights[:options.heads]  # (heads, L, L)
    return {
        "kind": "multihead", "sentence": options.sentence, "seed": options.seed, "d_model": steps.x.shape[-1],
        "heads": options.heads, "d_k": D_K, "positional": True, "causal": False, "device": "cpu",
        "tokens": steps.tokens, "x": steps.x.tolist(), "head_weights": weights.tolist(),
        "average_weights": weights.mean(0).tolist(), "output": steps.output.tolist(),
        "model": MODEL_NAME, "layer": layer,
    }


def draw(data: MultiheadData, options: MultiheadOptions, labels: dict):
    """One heatmap per head."""
    from filters.figures.heatmap import heads_figure

    titles = None if data["model"] == "none" else [f"L{data['layer']} H{h}" for h in range(data["heads"])]
    return heads_figure(data["head_weights"], data["tokens"], data["tokens"], labels=labels, height=options.height,
                        precision=options.precision, annotate=options.annotate, cmap=options.cmap, titles=titles,
                        title=None if data["model"] == "none" else data["model"])


KIND = Kind("multihead", MultiheadOptions, compute, output="figure", draw=draw, cost=1.5, examples=EXAMPLES,
            captions={
    "es": "Pesos de atención de cada una de las {heads} cabezas sobre «{sentence}»: cada cabeza mira a otra parte.",
    "en": "Attention weights of each of the {heads} heads on “{sentence}”: each head looks elsewhere.",
})
