"""``.head-view``: the heads of one layer of the pretrained model on a sentence, as bertviz's head
view: the tokens in two columns, joined by lines whose width and opacity are the weights, one
colour per head.

````markdown
```{.head-view #fig-it layer=2 heads="[0, 5]" query=it}
The animal didn't cross the street because it was too tired
```
````
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from filters.blocks.kind import Kind, Matrix
from filters.blocks.options import FigureOptions, option
from filters.blocks.parsers import as_int, as_str, int_list, optional
from filters.errors import BlockError
from filters.kinds._pretrained import HEADS, LAYERS, MODEL_NAME, RULE_LABELS, ModelSentenceOptions, as_head, missing, token_index

# This kind's frame in the starter deck of `attnslides new`, in each language.
EXAMPLES = {
    "es": "# Adónde mira «it»\n\n```{.head-view #cabezas-it layer=2 heads=\"[0, 5, 9]\" query=it}\n"
          "The animal didn't cross the street because it was too tired\n```",
    "en": "# Where «it» looks\n\n```{.head-view #heads-it layer=2 heads=\"[0, 5, 9]\" query=it}\n"
          "The animal didn't cross the street because it was too tired\n```",
}

LABEL_PT = 7.0  # the tokens, as projected on the slide: at least this, or the block is refused
MAX_TOKENS = 24
# One colour per head, told apart by colour-blind viewers too (Okabe & Ito's eight, then four of tab10).
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000",
           "#8c564b", "#7f7f7f", "#bcbd22", "#9467bd")


@dataclass(frozen=True)
class HeadViewOptions(FigureOptions, ModelSentenceOptions):
    """``.head-view``: the attention of some heads of one layer of the pretrained model
    all-MiniLM-L6-v2 on a sentence, as bertviz's head view: queries on the left, keys on the right,
    a line from each query to each key as wide and as opaque as its weight, one colour per head.

    Layers and heads are numbered from 0. ``head: previous-token`` (``next-token``, ``cls-sink``,
    ``sep-sink``, ``it->animal``) shows the one head the code finds doing that, and its measure."""

    layer: int | None = option(None, optional(as_int(0, LAYERS - 1)),
                               help=f"the layer, 0 to {LAYERS - 1} (default: 0, or where `head` finds its head)")
    heads: tuple[int, ...] | None = option(None, optional(int_list(0, HEADS - 1)),
                                           help=f"the heads shown, e.g. [0, 3] (from 0; default: all {HEADS})")
    head: int | str | None = option(None, optional(as_head), help="one head instead of `heads`: its number, or "
                                    "what it does, found from the weights: previous-token, next-token, cls-sink, "
                                    "sep-sink, or word->word (it->animal: where «it» looks most at «animal»)")
    query: str = option("", as_str, help="show only the lines of this token (as the model cuts the sentence, "
                                         "e.g. it); every occurrence of it")

    def validate(self) -> None:
        super().validate()
        if self.head is not None and self.heads is not None:
            raise BlockError("give either `heads` (several heads) or `head` (one), not both", key="head")


class HeadViewData(TypedDict):
    """What ``.head-view`` computes (``<id>.json``)."""

    kind: str
    model: str
    sentence: str
    tokens: list[str]  # L WordPiece tokens, [CLS] first, [SEP] last
    layer: int
    heads: list[int]  # the H' heads shown
    rule: str  # what `head` asked for ("previous-token" …), "" when the heads were given by number
    measure: float | None  # the rule's measure of the head found (see filters.kinds._pretrained.measures)
    query: str  # the token whose lines are shown, "" for all
    queries: list[int]  # the positions of that token (all positions when query is "")
    weights: list[Matrix]  # (H', L, L): weights[n] = head heads[n] of the layer, rows sum to 1


def compute(options: HeadViewOptions, device: str = "cpu") -> HeadViewData:
    """The model's weights on the sentence, for the heads asked (the model runs on the CPU)."""
    from filters.kinds._pretrained import find_head, run

    found = run(options.sentence, max_tokens=MAX_TOKENS)
    tokens = found.tokens
    rule, measure, layer = "", None, options.layer or 0
    heads = list(options.heads or range(HEADS))
    if options.head is not None:
        chosen = find_head(options.head, found.weights, tokens, layer=options.layer)
        rule, measure, layer, heads = chosen.rule, chosen.measure, chosen.layer, [chosen.head]
    queries = list(range(len(tokens)))
    if options.query:
        first = token_index(tokens, options.query, "query")  # the one message for a token not there
        queries = [i for i in range(first, len(tokens)) if tokens[i] == tokens[first]]
    return {
        "kind": "head-view", "model": MODEL_NAME, "sentence": options.sentence, "tokens": tokens,
        "layer": layer, "heads": heads, "rule": rule, "measure": measure,
        "query": options.query.lower(), "queries": queries,
        "weights": [found.weights[layer, head].tolist() for head in heads],
    }


def draw(data: HeadViewData, options: HeadViewOptions, labels: dict):
    """Two columns of tokens and, for each head, a line from each query shown to each key."""
    import numpy as np
    from matplotlib.lines import Line2D

    from filters.figures.render import projected_scale, slide_figure
    from filters.kinds._pretrained import Found, head_title

    tokens, weights = data["tokens"], np.asarray(data["weights"], dtype=float)  # (H', L, L)
    L = len(tokens)
    fig = slide_figure((4.2, 3.4), options.height)
    scale = projected_scale(fig, options.height)
    size = LABEL_PT / scale
    pitch = fig.get_figheight() * 72 * 0.8 / (L + 1.2)  # figure points between two rows (the title takes the rest)
    if pitch < size * 1.15:
        raise BlockError(f"{L} tokens in a column would be under {LABEL_PT:g} pt on the slide: use a shorter "
                         "sentence or a larger height", key="sentence")
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(L - 0.5, -1.7)  # the first token on top, under the columns' names
    shown = set(data["queries"])
    for n, head in enumerate(data["heads"]):
        colour = COLOURS[head % len(COLOURS)]
        for i in sorted(shown):
            for j in range(L):
                w = weights[n, i, j]
                if w >= 0.01:  # invisible anyway; keeps the file small
                    ax.plot([0.06, 0.94], [i, j], color=colour, alpha=float(min(1.0, w)), lw=3.0 * w / scale,
                            solid_capstyle="butt")
    for i, token in enumerate(tokens):
        bold = "bold" if data["query"] and i in shown else "normal"
        ax.text(0.04, i, token, ha="right", va="center", fontsize=size, fontweight=bold)
        ax.text(0.96, i, token, ha="left", va="center", fontsize=size)
    ax.text(0.04, -1.1, labels["query"], ha="right", va="center", fontsize=size, style="italic")
    ax.text(0.96, -1.1, labels["key"], ha="left", va="center", fontsize=size, style="italic")
    if data["rule"]:
        found = Found(data["layer"], data["heads"][0], data["rule"], data["measure"])
        ax.set_title(head_title(found, labels), fontsize=size * 1.1)
    else:
        ax.set_title(labels["layer"].format(layer=data["layer"]), fontsize=size * 1.1)
    handles = [Line2D([], [], color=COLOURS[h % len(COLOURS)], lw=2.5 / scale, label=f"H{h}") for h in data["heads"]]
    fig.legend(handles=handles, loc="outside right center", fontsize=size, frameon=False, handlelength=1.2,
               ncols=1 if len(handles) <= 6 else 2, columnspacing=0.8)
    return fig


KIND = Kind("head-view", HeadViewOptions, compute, output="figure", draw=draw, cost=2, examples=EXAMPLES,
            requires=missing, labels={
    "es": {**RULE_LABELS["es"], "layer": "capa {layer}"},
    "en": {**RULE_LABELS["en"], "layer": "layer {layer}"},
}, captions={
    # short: with the sentence they must fit under a figure of the default height (the starter deck checks)
    "es": "Atención de all-MiniLM-L6-v2 sobre «{sentence}»: cada línea va de una query (izquierda) a una key "
          "(derecha), tan ancha y opaca como su peso; un color por cabeza.",
    "en": "Attention of all-MiniLM-L6-v2 on “{sentence}”: each line goes from a query (left) to a key (right), "
          "as wide and opaque as its weight; one colour per head.",
})
