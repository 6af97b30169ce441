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


def text_width(text: str, size: float, *, bold: bool = False) -> float:
    """The width of one line of ``text`` at ``size`` points in the deck's font, in points."""
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    font = FontProperties(size=size, weight="bold" if bold else "normal")
    return RendererAgg(1, 1, 72).get_text_width_height_descent(text, font, ismath=False)[0]


def wrap_to(text: str, width: float, size: float) -> str:
    """``text`` broken at spaces into lines no wider than ``width`` points at ``size`` (a word
    longer than that stays whole); its own line breaks kept."""
    from filters.figures.render import break_lines

    return "\n".join(break_lines(text, width, lambda line: text_width(line, size)))


def _title(data: HeadViewData, labels: dict) -> str:
    """"layer 2, head 5" and the measure of a head a rule found, or "layer 2" for heads by number."""
    from filters.kinds._pretrained import Found, head_title

    if data["rule"]:
        return head_title(Found(data["layer"], data["heads"][0], data["rule"], data["measure"]), labels)
    return labels["layer"].format(layer=data["layer"])


def draw(data: HeadViewData, options: HeadViewOptions, labels: dict):
    """Two columns of tokens and, for each head, a line from each query shown to each key; the
    heads' colours on the right, the title wrapped to the figure's width. Placed by hand, in
    points, from the texts' measured widths: the columns are as wide as their longest token."""
    import numpy as np
    from matplotlib.lines import Line2D

    from filters.figures.render import current_page
    from filters.kinds._pretrained import wide_figure

    tokens, weights = data["tokens"], np.asarray(data["weights"], dtype=float)  # (H', L, L)
    L = len(tokens)
    # a low figure (40 %) up to 2.2 times as wide as high: at 4.2 : 3.4 its lines would have no room
    fig = wide_figure((4.2, 3.4), options.height, 2.2 if current_page().inches(options.height) < 1.9 else 0)
    W, H = fig.get_figwidth() * 72, fig.get_figheight() * 72
    size = LABEL_PT
    title = wrap_to(_title(data, labels), W - 4, size)
    title_height = (title.count("\n") + 1) * size * 1.25 + 4
    pitch = (H - title_height - 2) / (L + 1.2)  # points between two rows, under the title and the columns' names
    named = _named(data, pitch, size)
    columns = 1 if len(data["heads"]) <= 6 else 2
    names = [f"H{h}" for h in data["heads"]]
    per_column = max(text_width(name, size) for name in names) + 1.2 * size + 0.8 * size
    legend = columns * per_column + 0.4 * size * columns
    word = max(text_width(t, size, bold=True) for t in [*tokens, labels["col_query"], labels["col_key"]]) + 2
    if W - legend - 2 * word < 3 * size:
        raise BlockError(f"tokens as long as these leave no room for the lines between them at {LABEL_PT:g} pt: "
                         "use a larger height or a shorter sentence", key="sentence")
    right = W - legend
    ax = fig.add_axes((0, 0, right / W, (H - title_height) / H), xlim=(0, right))  # x in figure points
    ax.set_axis_off()
    # the first token on top, the columns' names a label's height above it (in rows: more than one
    # where they are thinned), the last token's label inside the figure
    header = -1.1 * max(1.0, 1.15 * size / pitch)
    ax.set_ylim(L - 1 + max(0.5, 0.6 * size / pitch), 1.55 * header)
    x_query, x_key = word, right - word  # where each column's text ends (queries) and begins (keys)
    shown = set(data["queries"])
    for n, head in enumerate(data["heads"]):
        colour = COLOURS[head % len(COLOURS)]
        for i in sorted(shown):
            for j in range(L):
                w = weights[n, i, j]
                if w >= 0.01:  # invisible anyway; keeps the file small
                    ax.plot([x_query + 2, x_key - 2], [i, j], color=colour, alpha=float(min(1.0, w)), lw=3.0 * w,
                            solid_capstyle="butt")
    for i, token in enumerate(tokens):
        if i not in named:
            continue
        bold = "bold" if data["query"] and i in shown else "normal"
        ax.text(x_query, i, token, ha="right", va="center", fontsize=size, fontweight=bold)
        ax.text(x_key, i, token, ha="left", va="center", fontsize=size)
    ax.text(x_query, header, labels["col_query"], ha="right", va="center", fontsize=size, style="italic")
    ax.text(x_key, header, labels["col_key"], ha="left", va="center", fontsize=size, style="italic")
    fig.text(0.5, 1 - 2 / H, title, ha="center", va="top", fontsize=size, linespacing=1.25)
    handles = [Line2D([], [], color=COLOURS[h % len(COLOURS)], lw=2.5, label=name)
               for h, name in zip(data["heads"], names, strict=True)]
    fig.legend(handles=handles, loc="center right", bbox_to_anchor=(1, (H - title_height) / 2 / H), fontsize=size,
               frameon=False, handlelength=1.2, handletextpad=0.4, ncols=columns, columnspacing=0.4, borderaxespad=0,
               borderpad=0)
    return fig


def _named(data: HeadViewData, pitch: float, size: float) -> set[int]:
    """The rows whose token is named when rows are ``pitch`` points apart and labels ``size``
    points high: all, or every 2nd or 3rd (the first query's among them); the lines still go to
    every token.

    Raises:
        BlockError: (key ``sentence``) when even every :data:`MAX_STEP`-th would not fit."""
    import math

    L = len(data["tokens"])
    step = math.ceil(size * 1.15 / pitch)
    if step > MAX_STEP:
        raise BlockError(f"{L} tokens in a column leave {pitch:.1f} pt a row: too close for their lines to be told "
                         "apart; use a shorter sentence or a larger height", key="sentence")
    first = data["queries"][0] if data["query"] else 0
    return {i for i in range(L) if (i - first) % step == 0}


# Naming only every MAX_STEP-th token at most: closer rows than that are a block of lines.
MAX_STEP = 3


KIND = Kind("head-view", HeadViewOptions, compute, output="figure", draw=draw, cost=2, examples=EXAMPLES,
            requires=missing, labels={
    "es": {**RULE_LABELS["es"], "layer": "capa {layer}", "col_query": "query", "col_key": "key"},
    "en": {**RULE_LABELS["en"], "layer": "layer {layer}", "col_query": "query", "col_key": "key"},
}, captions={
    # short: with the sentence they must fit under a figure of the default height (the starter deck checks)
    "es": "Atención de all-MiniLM-L6-v2 sobre «{sentence}»: cada línea va de una query (izquierda) a una key "
          "(derecha), tan ancha y opaca como su peso; un color por cabeza.",
    "en": "Attention of all-MiniLM-L6-v2 on “{sentence}”: each line goes from a query (left) to a key (right), "
          "as wide and opaque as its weight; one colour per head.",
})
