"""``.permutation``: a sentence and the same tokens permuted, side by side — without positional
encoding the weights only permute: attention does not see order.

````markdown
```{.permutation #fig-permutacion positional=false}
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
from filters.blocks.parsers import as_bool, int_list, optional
from filters.errors import BlockError
from filters.kinds._sentence import SentenceOptions

EXAMPLES = {
    "es": "# ¿Ve el orden la atención?\n\n```{.permutation #permutacion}\nel gato se sentó en la alfombra\n```",
    "en": "# Does attention see order?\n\n```{.permutation #permutation}\nthe cat sat on the mat\n```",
}

@dataclass(frozen=True)
class PermutationOptions(FigureOptions, HeatmapOptions, SentenceOptions):
    """``.permutation``: the same sentence with its tokens permuted, side by side. Without positional
    encoding the weights just permute with the tokens (attention is permutation-equivariant)."""

    max_tokens: ClassVar[int] = 16  # two heatmaps share the slide
    order: tuple[int, ...] | None = option(None, optional(int_list(0)),
                                           help="the new order of the tokens, e.g. [6, 5, 4, 3, 2, 1, 0] (auto: reversed)")
    positional: bool = option(False, as_bool, help="add the sinusoidal positional encoding (then order matters)")

    def validate(self) -> None:
        super().validate()
        if self.order is not None and sorted(self.order) != list(range(len(self.order))):
            raise BlockError(f"{list(self.order)} is not a permutation of 0..{len(self.order) - 1}", key="order")


class PermutationData(TypedDict):
    """What ``.permutation`` computes (``<id>.json``)."""

    kind: str
    sentence: str
    seed: int
    d_model: int
    positional: bool
    device: str
    tokens: list[str]  # L tokens
    permuted_tokens: list[str]  # permuted[i] = tokens[order[i]]
    order: list[int]
    weights: Matrix  # (L, L) of the sentence
    permuted_weights: Matrix  # (L, L) of the permuted tokens
    max_difference: float  # max |A' − A[order][:, order]|: 0 up to rounding when positional is false


def compute(options: PermutationOptions, device: str = "cpu") -> PermutationData:
    """Self-attention of a sentence and of the same tokens in another order, with the same weights.

    With ``π`` the new order (``permuted[i] = tokens[order[i]]``), permutation equivariance says
    ``A'[i, j] = A[order[i], order[j]]`` when no positional encoding is added (slide "Problema clave:
    el orden"). ``max_difference`` measures how far the two are from that.
    """
    import torch

    from engine.device import pick
    from engine.tokens import Vocabulary, tokenize
    from filters.kinds._sentence import make_head, self_attention

    dev = pick(device)
    tokens = tokenize(options.sentence)
    order = list(options.order) if options.order is not None else list(range(len(tokens)))[::-1]
    if len(order) != len(tokens):
        raise BlockError(f"the order has {len(order)} positions but the sentence has {len(tokens)} tokens", key="order")
    permuted = [tokens[i] for i in order]
    vocab = Vocabulary(tokens)
    head = make_head(vocab, seed=options.seed, d_model=options.d_model, d_k=options.d_model, device=dev)
    weights = self_attention(tokens, vocab, head, positional=options.positional, causal=False).weights
    permuted_weights = self_attention(permuted, vocab, head, positional=options.positional, causal=False).weights
    index = torch.tensor(order, device=dev)
    expected = weights[index][:, index]  # (L, L): A[order[i], order[j]]
    return {
        "kind": "permutation", "sentence": options.sentence, "seed": options.seed, "d_model": options.d_model,
        "positional": options.positional, "device": dev.type,
        "tokens": tokens, "permuted_tokens": permuted, "order": order,
        "weights": as_list(weights), "permuted_weights": as_list(permuted_weights),
        "max_difference": float((permuted_weights - expected).abs().max()),
    }


# The words of this figure besides the shared ones (filters.blocks.labels), in every language.
LABELS = {
    "es": {"original": "orden original", "permuted": "tokens permutados",
           "max_difference": "máx. |A′ − A permutada| = {:.0e}"},
    "en": {"original": "original order", "permuted": "permuted tokens",
           "max_difference": "max |A′ − permuted A| = {:.0e}"},
}


def draw(data: PermutationData, options: PermutationOptions, labels: dict):
    """The sentence's heatmap beside the permuted sentence's, one colour scale, one colorbar."""

    from filters.figures.heatmap import attention_heatmap, weights_colorbar, widened
    from filters.figures.render import projected_scale, slide_figure

    fig = slide_figure(widened((5.0, 2.75), options.height), options.height)  # two panels: the text's width
    axes = fig.subplots(1, 2)
    for ax, weights, tokens, title in ((axes[0], data["weights"], data["tokens"], labels["original"]),
                                       (axes[1], data["permuted_weights"], data["permuted_tokens"], labels["permuted"])):
        heatmap = attention_heatmap(ax, weights, tokens, tokens, precision=options.precision, annotate=options.annotate,
                                    cmap=options.cmap, labels=labels, scale=projected_scale(fig, options.height),
                                    alternate=False)
        ax.set_title(title)
    axes[1].set_ylabel("")
    weights_colorbar(fig, heatmap, ax=axes, labels=labels, fraction=0.04, pad=0.02)
    fig.suptitle(labels["max_difference"].format(data["max_difference"]), fontsize=9)
    return fig


KIND = Kind("permutation", PermutationOptions, compute, output="figure", draw=draw, cost=3, labels=LABELS,
            examples=EXAMPLES, captions={
    "es": "Pesos de atención de «{sentence}» y de sus tokens permutados.",
    "en": "Attention weights of “{sentence}” and of its permuted tokens.",
})
