"""``.neuron-view``: one query of one head of the pretrained model, opened up: its ``q``, each key's
``k`` (a few dimensions shown), ``q·k/√d_k`` and the softmax — eq. (1) with the model's own numbers
(bertviz's neuron view, as a vector figure).

````markdown
```{.neuron-view #fig-q-it head=it->animal query=it}
The animal didn't cross the street because it was too tired
```
````
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from filters.blocks.kind import Kind, Matrix
from filters.blocks.options import FigureOptions, option
from filters.blocks.parsers import as_int, as_str, optional
from filters.errors import BlockError
from filters.kinds._pretrained import D_K, LAYERS, MODEL_NAME, RULE_LABELS, ModelSentenceOptions, as_head, missing

# This kind's frame in the starter deck of `attnslides new`, in each language.
EXAMPLES = {
    "es": "# Una query por dentro\n\n```{.neuron-view #neurona head=it->animal query=it}\n"
          "The animal didn't cross the street because it was too tired\n```",
    "en": "# One query, opened up\n\n```{.neuron-view #neuron head=it->animal query=it}\n"
          "The animal didn't cross the street because it was too tired\n```",
}

LABEL_PT = 7.0  # every number and token, as projected on the slide: at least this, or the block is refused
MAX_TOKENS = 20


@dataclass(frozen=True)
class NeuronViewOptions(FigureOptions, ModelSentenceOptions):
    """``.neuron-view``: one query token in one head of the pretrained model all-MiniLM-L6-v2,
    opened up: its query ``q``, each key ``k_j`` (the first few of their d_k = 32 dimensions),
    the scores ``q·k_j/√d_k`` over all 32, and their softmax, the head's attention weights.

    Layers and heads are numbered from 0; ``head`` may name what the head does (``it->animal``,
    ``previous-token`` …), and the code finds it."""

    layer: int | None = option(None, optional(as_int(0, LAYERS - 1)),
                               help=f"the layer, 0 to {LAYERS - 1} (default: 0, or where `head` finds its head)")
    head: int | str = option(0, as_head, help="the head: its number, or what it does, found from the weights: "
                             "previous-token, next-token, cls-sink, sep-sink, or word->word (it->animal)")
    query: str = option("", as_str, help="the query token (as the model cuts the sentence; its first occurrence); "
                                         "default: the first word of a word->word head, else the first token after "
                                         "[CLS]")
    dims: int = option(4, as_int(1, 8), help="how many of q's and k's 32 dimensions are printed (the scores use all; "
                                            "as many as the slide's width allows at 7 pt: about 4)")


class NeuronViewData(TypedDict):
    """What ``.neuron-view`` computes (``<id>.json``)."""

    kind: str
    model: str
    sentence: str
    tokens: list[str]  # L WordPiece tokens, [CLS] first, [SEP] last
    layer: int
    head: int
    rule: str  # what `head` asked for ("it->animal" …), "" for a head given by number
    measure: float | None  # the rule's measure of the head found
    query: str
    query_index: int  # i: the query's position
    d_k: int
    q: list[float]  # (d_k,): the head's query of token i
    k: Matrix  # (L, d_k): the head's keys
    scores: list[float]  # (L,): q·k_j / √d_k
    weights: list[float]  # (L,): softmax of the scores (the head's row i: sums to 1)
    model_weights: list[float]  # (L,): the same row as the model returns it (equal to weights up to rounding)


def compute(options: NeuronViewOptions, device: str = "cpu") -> NeuronViewData:
    """``softmax(q·k_j/√d_k)`` for the query, from the head's own q and k (the model runs on the CPU)."""
    import numpy as np

    from filters.kinds._pretrained import find_head, run, token_index

    found = run(options.sentence, max_tokens=MAX_TOKENS)
    tokens = found.tokens
    chosen = find_head(options.head, found.weights, tokens, layer=options.layer)
    query = options.query or (chosen.rule.split("->")[0] if "->" in chosen.rule else tokens[1])
    i = token_index(tokens, query, "query")
    q = found.queries[chosen.layer, chosen.head, i]  # (d_k,)
    k = found.keys[chosen.layer, chosen.head]  # (L, d_k)
    if q.shape[-1] != D_K:
        raise BlockError(f"the model's heads are {q.shape[-1]} wide, not {D_K}")
    scores = k @ q / np.sqrt(D_K)  # (L,): eq. (1), one row
    weights = np.exp(scores - scores.max())
    weights /= weights.sum()
    return {
        "kind": "neuron-view", "model": MODEL_NAME, "sentence": options.sentence, "tokens": tokens,
        "layer": chosen.layer, "head": chosen.head, "rule": chosen.rule, "measure": chosen.measure,
        "query": tokens[i], "query_index": i, "d_k": D_K,
        "q": q.tolist(), "k": k.tolist(), "scores": scores.tolist(), "weights": weights.tolist(),
        "model_weights": found.weights[chosen.layer, chosen.head, i].tolist(),
    }


def _columns(tokens: list[str], dims: int, size: float, width: float):
    """Where the table's columns stand, in figure points: token | k[0] … k[dims−1] | … |
    q·k/√d_k | softmax bar and number. Returns ``(dims, char, label, number, x_dims, x_dots, x_score,
    x_bar)``, with as many of the ``dims`` dimensions as fit ``width`` (at least one).

    Raises:
        BlockError: (key ``dims``) when even one dimension does not fit ``width``."""
    for shown in range(dims, 0, -1):
        columns = _columns_of(tokens, shown, size)
        if columns[-1] + 8.5 * columns[0] <= width:  # the bar (4 digits wide) and its «1.00»
            return (shown, *columns)
    raise BlockError(f"tokens as long as these leave no room for one dimension of k at {LABEL_PT:g} pt: "
                     "use a shorter sentence or a larger height", key="dims")


def _columns_of(tokens: list[str], dims: int, size: float):
    """:func:`_columns` for exactly ``dims`` dimensions, whatever the width."""
    from filters.kinds.head_view import text_width

    char = 0.6 * size  # about the width of a digit
    label = max(text_width(f"k «{t}»", size, bold=True) for t in tokens) + char  # measured: «[CLS]» is narrow
    number = 5.8 * char  # "-0.69" and a gap
    x_dims = [label + number * (d + 0.5) for d in range(dims)]
    x_dots, x_score = label + number * dims + char, label + number * dims + 6 * char
    x_bar = x_score + 4 * char
    return char, label, number, x_dims, x_dots, x_score, x_bar


def draw(data: NeuronViewData, options: NeuronViewOptions, labels: dict):
    """A table: one row per key (its token, the first ``dims`` numbers of k, q·k/√d_k, the weight as
    a bar and a number), under the row of q; cells shaded by their sign and size."""
    import matplotlib
    import numpy as np
    from matplotlib.patches import Rectangle

    from filters.figures.render import projected_scale
    from filters.kinds._pretrained import wide_figure

    # placed by hand, a table in points; a low one (40 %) up to 2.4 times as wide as high: room for k's numbers
    fig = wide_figure((4.6, 3.4), options.height, 2.4)
    size = LABEL_PT / projected_scale(fig, options.height)
    W, H = fig.get_figwidth() * 72, fig.get_figheight() * 72
    title = _title(data, labels, options.dims, W - 8, size)  # in a column: more lines
    table = H - (title.count("\n") + 1) * size * 1.3 - 4  # points under the title
    keys = _keys_shown(data, int(table / (size * 1.05) - 2.6))
    tokens, q, k = [data["tokens"][j] for j in keys], np.asarray(data["q"]), np.asarray(data["k"])[keys]
    L = len(tokens) + (len(keys) < len(data["tokens"]))  # and a row that says how many are left out
    ax = fig.add_axes((0.0, 0.0, 1.0, table / H))  # x in figure points; the title above
    ax.set_axis_off()
    dims, char, label, number, x_dims, x_dots, x_score, x_bar = _columns(tokens, options.dims, size, W)
    ax.set(xlim=(0, W), ylim=(L + 1.5, -1.1))
    unit = number * 0.48  # half a cell's width, in points
    largest = float(np.abs(np.r_[q[:dims], k[:, :dims].ravel()]).max()) or 1.0

    def cell(x, y, value, *, bold=False):
        # red above 0, blue below, pale enough for black digits (the middle 70% of the map)
        ax.add_patch(Rectangle((x - unit, y - 0.45), 2 * unit, 0.9, lw=0,
                               color=matplotlib.colormaps["RdBu_r"](0.5 + 0.35 * value / largest)))
        ax.text(x, y, f"{value:.2f}", ha="center", va="center", fontsize=size, fontweight="bold" if bold else "normal")

    for d, x in enumerate(x_dims):  # the header (which dimension), and q's row
        ax.text(x, -0.6, f"[{d}]", ha="center", va="center", fontsize=size, style="italic")
        cell(x, 0.4, q[d], bold=True)
    # plain text, not math (drawn at 10 pt so that a subscript is 7): it keeps clear of «softmax» and «…»
    ax.text(x_score, -0.6, "q·k/√dₖ", ha="center", va="center", fontsize=size)
    ax.text(x_bar, -0.6, "softmax", ha="left", va="center", fontsize=size)
    ax.text(label - char, 0.4, f"q «{data['query']}»", ha="right", va="center", fontsize=size, fontweight="bold")
    ax.text(x_dots, 0.4, "…", ha="center", va="center", fontsize=size)
    top = 1.5
    best = int(np.argmax(data["weights"]))
    for row, (j, token) in enumerate(zip(keys, tokens, strict=True)):
        y = top + row
        ax.text(label - char, y, f"k «{token}»", ha="right", va="center", fontsize=size,
                fontweight="bold" if j == best else "normal")
        for d, x in enumerate(x_dims):
            cell(x, y, k[row, d])
        ax.text(x_dots, y, "…", ha="center", va="center", fontsize=size)
        ax.text(x_score + 3.2 * char, y, f"{data['scores'][j]:.2f}", ha="right", va="center", fontsize=size)
        w = data["weights"][j]
        ax.add_patch(Rectangle((x_bar, y - 0.35), 4 * char * w, 0.7, color="#0072B2", lw=0))
        ax.text(x_bar + 4 * char * w + char / 2, y, f"{w:.2f}", ha="left", va="center", fontsize=size)
    if len(keys) < len(data["tokens"]):  # a row says how many keys have none
        ax.text(x_dims[0] - unit, top + len(keys), labels["left_out"].format(n=len(data["tokens"]) - len(keys)),
                ha="left", va="center", fontsize=size, style="italic")
    if dims < options.dims:  # fewer dimensions fit than were asked: the title says how many are shown
        title = _title(data, labels, dims, W - 8, size)
    fig.suptitle(title, fontsize=size, linespacing=1.3, y=0.99, va="top")
    return fig


def _title(data: NeuronViewData, labels: dict, dims: int, width: float, size: float) -> str:
    """The head's title and the formula (``dims`` shown), wrapped to ``width`` points at ``size``."""
    from filters.kinds._pretrained import Found, head_title
    from filters.kinds.head_view import wrap_to

    found = Found(data["layer"], data["head"], data["rule"], data["measure"])
    formula = labels["formula"].format(d_k=data["d_k"], dims=dims)
    return wrap_to(f"{head_title(found, labels)}\n{formula}", width, size)


def _keys_shown(data: NeuronViewData, rows: int) -> list[int]:
    """The keys that have a row (in the sentence's order) when ``rows`` fit: all of them, or the
    query's and those of the largest weights, a row left for saying how many are left out.

    Raises:
        BlockError: (key ``sentence``) when not even three keys fit."""
    import numpy as np

    L = len(data["tokens"])
    if rows >= L:
        return list(range(L))
    if rows < 4:
        raise BlockError(f"{L} tokens, one row each, would be under {LABEL_PT:g} pt on the slide: use a shorter "
                         "sentence or a larger height", key="sentence")
    by_weight = [int(j) for j in np.argsort(-np.asarray(data["weights"]), kind="stable")]
    keep = [data["query_index"]] + [j for j in by_weight if j != data["query_index"]][:rows - 2]
    return sorted(keep)


KIND = Kind("neuron-view", NeuronViewOptions, compute, output="figure", draw=draw, cost=2, examples=EXAMPLES,
            requires=missing, labels={
    "es": {**RULE_LABELS["es"], "left_out": "y {n} keys más",
           "formula": "softmax(q·k/√{d_k}) con las {d_k} dimensiones; se ven {dims}"},
    "en": {**RULE_LABELS["en"], "left_out": "and {n} more keys",
           "formula": "softmax(q·k/√{d_k}) over all {d_k} dimensions; {dims} shown"},
}, captions={
    "es": "Una query de all-MiniLM-L6-v2 por dentro, sobre «{sentence}»: su q, la k de cada token, "
          "$q\\cdot k/\\sqrt{{d_k}}$ y el softmax, con los números del propio modelo.",
    "en": "One query of all-MiniLM-L6-v2 opened up, on “{sentence}”: its q, each token's k, "
          "$q\\cdot k/\\sqrt{{d_k}}$ and the softmax, with the model's own numbers.",
})
