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
from filters.blocks.parsers import as_bool, as_choice, as_int, optional
from filters.errors import BlockError
from filters.kinds._pretrained import LAYERS, MODEL, MODEL_HELP, RULE_LABELS, as_head
from filters.kinds._sentence import SentenceOptions

# This kind's frame in the starter deck of `attnslides new`, in each language.
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
    model: str = option("none", as_choice("none", MODEL), help=MODEL_HELP)
    layer: int | None = option(None, optional(as_int(0, LAYERS - 1)),
                               help="with model: the layer (default: 0, or where `head` finds its head)")
    head: int | str = option(0, as_head, help="with model: the head, its number or what it does, found from the "
                             "weights: previous-token, next-token, cls-sink, sep-sink, word->word (it->animal)")

    def validate(self) -> None:
        super().validate()
        real = self.model != "none"
        for key, given in (("causal", self.causal), ("d_k", self.d_k is not None)):
            if real and given:
                raise BlockError(f"a real model's head has its own weights: {key} applies to the toy weights only "
                                 "(model: none)", key=key)
        for key, given in (("layer", self.layer is not None), ("head", self.head != 0)):
            if not real and given:
                raise BlockError(f"{key} chooses a head of a real model: add model: {MODEL}", key=key)


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
    model: str  # "none", or the real model whose head this is ("all-MiniLM-L6-v2")
    layer: int | None  # the real head's layer and number (from 0); None for the toy weights
    head: int | None
    rule: str  # what `head` asked for ("previous-token" …), "" when given by number (or toy)
    measure: float | None  # that rule's measure of the head found (filters.kinds._pretrained.measures)


def compute(options: AttentionOptions, device: str = "cpu") -> AttentionData:
    """Self-attention weights of ``options.sentence``.

    ``X = E + P`` (embedding + sinusoidal encoding, slide "Positional Encoding"),
    ``Q, K, V = X W_Q, X W_K, X W_V`` and ``A = softmax(QKᵀ/√d_k)`` (Vaswani et al. 2017, §3.2.1).
    """
    from engine.device import pick
    from engine.tokens import Vocabulary, tokenize
    from filters.kinds._sentence import make_head, self_attention

    if options.model != "none":
        return _real_head(options)
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
        "model": "none", "layer": None, "head": None, "rule": "", "measure": None,
    }


def _real_head(options: AttentionOptions) -> AttentionData:
    """One head of the pretrained model: its q, k, v, weights and output (the model runs on the CPU)."""
    from filters.kinds._pretrained import D_K, MODEL_NAME, find_head, layer_steps, run

    found = run(options.sentence, max_tokens=options.max_tokens)
    chosen = find_head(options.head, found.weights, found.tokens, layer=options.layer)
    steps = layer_steps(options.sentence, chosen.layer)
    h = chosen.head
    return {
        "kind": "attention", "sentence": options.sentence, "seed": options.seed, "d_model": steps.x.shape[-1],
        "d_k": D_K, "positional": True, "causal": False, "device": "cpu", "tokens": found.tokens,
        "q": steps.q[h].tolist(), "k": steps.k[h].tolist(), "v": steps.v[h].tolist(), "scale": D_K ** -0.5,
        "mask": None, "weights": steps.weights[h].tolist(), "output": (steps.weights[h] @ steps.v[h]).tolist(),
        "model": MODEL_NAME, "layer": chosen.layer, "head": h, "rule": chosen.rule, "measure": chosen.measure,
    }


def draw(data: AttentionData, options: AttentionOptions, labels: dict):
    """The heatmap (queries on rows, keys on columns) and its colorbar."""

    from filters.figures.heatmap import attention_heatmap, heatmap_width, weights_colorbar, widened
    from filters.figures.render import projected_scale, slide_figure

    L = len(data["tokens"])
    fig = slide_figure(widened((4.2, 3.2), options.height, heatmap_width(L)), options.height)
    ax = fig.add_subplot()
    heatmap = attention_heatmap(ax, data["weights"], data["tokens"], data["tokens"], precision=options.precision,
                                annotate=options.annotate, cmap=options.cmap, labels=labels,
                                scale=projected_scale(fig, options.height))
    weights_colorbar(fig, heatmap, ax=ax, labels=labels, fraction=0.06, pad=0.03)
    if data["model"] != "none":
        from filters.kinds._pretrained import Found, head_title

        found = Found(data["layer"], data["head"], data["rule"], data["measure"])
        ax.set_title(f"{data['model']}: {head_title(found, labels)}", fontsize=9)
    return fig


KIND = Kind("attention", AttentionOptions, compute, output="figure", draw=draw, cost=1, examples=EXAMPLES,
            labels=RULE_LABELS, captions={
    "es": "Pesos de auto-atención de «{sentence}»: cada fila es un token que pregunta (query) y suma 1.",
    "en": "Self-attention weights of “{sentence}”: each row is a query token and sums to 1.",
})
