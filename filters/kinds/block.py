"""``.block``: one Transformer block on a sentence — where its attention looks, and how much each
sub-layer changes each token (Vaswani et al. 2017, §3.1; pre-norm as in GPT-2).

````markdown
```{.block #fig-bloque heads=2}
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
from filters.blocks.parsers import as_bool, as_int, optional
from filters.errors import BlockError
from filters.kinds._sentence import SentenceOptions

EXAMPLES = {
    "es": "# Un bloque Transformer\n\n```{.block #bloque heads=2}\nel gato se sentó en la alfombra\n```",
    "en": "# One Transformer block\n\n```{.block #block heads=2}\nthe cat sat on the mat\n```",
}


@dataclass(frozen=True)
class BlockOptions(FigureOptions, HeatmapOptions, SentenceOptions):
    """``.block``: one Transformer block (seeded) on a sentence: its attention weights (mean over
    heads) beside the size of each sub-layer's update of each token, ‖Δ‖/‖x‖.

    post-norm (the paper): x → LayerNorm(x + Attention(x)) → LayerNorm(· + FFN(·));
    pre-norm (``norm_first=true``): x → x + Attention(LayerNorm(x)) → · + FFN(LayerNorm(·))."""

    max_tokens: ClassVar[int] = 16
    heads: int = option(2, as_int(1, 8), help="attention heads H; must divide d_model")
    d_ff: int | None = option(None, optional(as_int(1, 4096)), help="hidden width of the feed-forward (auto: 4·d_model)")
    norm_first: bool = option(False, as_bool, help="pre-norm (LayerNorm before each sub-layer) instead of the paper's post-norm")
    positional: bool = option(True, as_bool, help="add the sinusoidal positional encoding to the embeddings")

    def validate(self) -> None:
        super().validate()
        if self.d_model < 2:
            raise BlockError("a layer norm over one number is always 0/0: use d_model of 2 or more", key="d_model")
        if self.d_model % self.heads:
            raise BlockError(f"d_model = {self.d_model} must be divisible by heads = {self.heads}", key="heads")


class BlockData(TypedDict):
    """What ``.block`` computes (``<id>.json``): the block's input, output and every step between."""

    kind: str
    sentence: str
    seed: int
    d_model: int
    heads: int
    d_ff: int
    norm_first: bool
    positional: bool
    device: str
    tokens: list[str]  # L tokens
    x: Matrix  # (L, d_model): the block's input, embeddings (+ positions)
    attention_update: Matrix  # (L, d_model): what the attention sub-layer adds to the residual stream
    middle: Matrix  # (L, d_model): the stream between the two sub-layers
    feedforward_update: Matrix  # (L, d_model): what the feed-forward sub-layer adds
    output: Matrix  # (L, d_model): the block's output
    weights: Matrix  # (L, L): attention weights, mean over heads
    head_weights: list[Matrix]  # (H, L, L)
    attention_ratio: list[float]  # per token ‖attention_update‖ / ‖x‖
    feedforward_ratio: list[float]  # per token ‖feedforward_update‖ / ‖middle‖


def compute(options: BlockOptions, device: str = "cpu") -> BlockData:
    """Run ``engine.block.TransformerBlock`` (embedding from ``seed``, the block's weights from
    ``seed + 1``, eval mode) one sub-layer at a time, keeping what each adds to the residual stream."""
    import torch

    from engine.block import TransformerBlock
    from engine.device import pick
    from engine.embedding import TokenEmbedding
    from engine.tokens import Vocabulary
    from filters.kinds._sentence import embed

    dev = pick(device)
    tokens = options.tokens
    vocab = Vocabulary(tokens)
    d_ff = options.d_ff or 4 * options.d_model
    embedding = TokenEmbedding(len(vocab), options.d_model, seed=options.seed, tokens=vocab.itos).to(dev)
    block = TransformerBlock(options.d_model, options.heads, d_ff, norm_first=options.norm_first,
                             seed=options.seed + 1).to(dev).eval()
    x = embed(tokens, vocab, embedding, positional=options.positional)[None]  # (1, L, d_model)
    with torch.no_grad():
        first, second = block.residual1.norm, block.residual2.norm
        attention_in = first(x) if options.norm_first else x  # (1, L, d_model)
        attention_update, weights = block.attn(attention_in, need_weights=True)  # (1, L, d_model), (1, H, L, L)
        middle = x + attention_update if options.norm_first else first(x + attention_update)  # (1, L, d_model)
        feedforward_update = block.ff(second(middle) if options.norm_first else middle)  # (1, L, d_model)
        output = middle + feedforward_update if options.norm_first else second(middle + feedforward_update)
    ratio = lambda update, stream: (update.norm(dim=-1) / stream.norm(dim=-1))[0]  # noqa: E731  (L,)
    return {
        "kind": "block", "sentence": options.sentence, "seed": options.seed, "d_model": options.d_model,
        "heads": options.heads, "d_ff": d_ff, "norm_first": options.norm_first, "positional": options.positional,
        "device": dev.type, "tokens": tokens,
        "x": as_list(x[0]), "attention_update": as_list(attention_update[0]), "middle": as_list(middle[0]),
        "feedforward_update": as_list(feedforward_update[0]), "output": as_list(output[0]),
        "weights": as_list(weights[0].mean(0)), "head_weights": as_list(weights[0]),
        "attention_ratio": as_list(ratio(attention_update, x)),
        "feedforward_ratio": as_list(ratio(feedforward_update, middle)),
    }


def draw(data: BlockData, options: BlockOptions, labels: dict):
    """The attention heatmap beside horizontal bars, one pair per token (same rows, named again at
    the bars' left: the colour bar stands between)."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    from filters.figures.heatmap import attention_heatmap, weights_colorbar, widened
    from filters.figures.render import projected_scale, slide_figure

    fig = slide_figure(widened((5.2, 2.9), options.height), options.height)  # two panels: the text's width
    fig.get_layout_engine().set(w_pad=4 / 72, wspace=0.06)  # the colour bar's name well clear of the bars' names
    heat_ax, bar_ax = fig.subplots(1, 2, width_ratios=[1.25, 1])
    heatmap = attention_heatmap(heat_ax, data["weights"], data["tokens"], data["tokens"], precision=options.precision,
                                annotate=options.annotate, cmap=options.cmap, labels=labels,
                                scale=projected_scale(fig, options.height), alternate=False)
    heatmap.row_axes = (bar_ax,)  # its rows' names, as the heatmap's are sized and thinned
    heat_ax.set_title(labels["block_attention" if data["heads"] > 1 else "block_attention_one"].format(heads=data["heads"]))
    weights_colorbar(fig, heatmap, ax=heat_ax, labels=labels, fraction=0.08, pad=0.02)
    rows = np.arange(len(data["tokens"]))
    bar_ax.barh(rows - 0.2, data["attention_ratio"], height=0.4, label=labels["block_attention_bar"])
    bar_ax.barh(rows + 0.2, data["feedforward_ratio"], height=0.4, label=labels["block_feedforward_bar"])
    bar_ax.tick_params(axis="y", length=0)
    bar_ax.set_ylim(len(rows) - 0.5, -0.5)  # the heatmap's rows, top to bottom
    bar_ax.set_xlabel(labels["block_ratio"])
    bar_ax.xaxis.set_major_locator(MaxNLocator(nbins=3))  # a narrow axis: few numbers, apart
    wide = fig.get_figwidth() * 72 >= 300  # the legend's two entries side by side, or one above the other
    bar_ax.legend(frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2 if wide else 1,
                  title=labels["block_pre_norm" if data["norm_first"] else "block_post_norm"],
                  handlelength=1.0, columnspacing=0.8, borderaxespad=0.2)
    return fig


# The words of this figure besides the shared ones (filters.blocks.labels), in every language.
LABELS = {
    "es": {"block_attention": "atención ({heads} cabezas, media)", "block_attention_one": "atención (1 cabeza)",
           "block_attention_bar": "atención",
           "block_feedforward_bar": "feed-forward", "block_ratio": "cambio relativo ‖Δ‖ / ‖x‖",
           "block_post_norm": "post-norm (el artículo)", "block_pre_norm": "pre-norm (GPT-2)"},
    "en": {"block_attention": "attention ({heads} heads, mean)", "block_attention_one": "attention (1 head)",
           "block_attention_bar": "attention",
           "block_feedforward_bar": "feed-forward", "block_ratio": "relative change ‖Δ‖ / ‖x‖",
           "block_post_norm": "post-norm (the paper)", "block_pre_norm": "pre-norm (GPT-2)"},
}


KIND = Kind("block", BlockOptions, compute, output="figure", draw=draw, cost=1.5, labels=LABELS, examples=EXAMPLES,
            captions={
    "es": "Un bloque Transformer sobre «{sentence}»: a dónde mira su atención y cuánto cambia cada subcapa a "
          "cada token.",
    "en": "One Transformer block on “{sentence}”: where its attention looks and how much each sub-layer changes "
          "each token.",
})
