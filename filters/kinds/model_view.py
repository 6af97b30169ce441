"""``.model-view``: every layer × head of the pretrained model on one sentence, as a grid of small
heatmaps (bertviz's model view, as a vector figure).

````markdown
```{.model-view #fig-modelo layers="[0, 1]" heads="[0, 1, 2, 3]"}
the cat sat on the mat
```
````
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from filters.blocks.kind import Kind, Matrix
from filters.blocks.options import COLORMAPS, FigureOptions, option
from filters.blocks.parsers import as_bool, as_choice, int_list, optional
from filters.kinds._pretrained import HEADS, LAYERS, MODEL_NAME, ModelSentenceOptions, missing

# This kind's frame in the starter deck of `attnslides new`, in each language.
EXAMPLES = {
    "es": "# Un modelo real, capa a capa\n\n```{.model-view #modelo layers=\"[0, 1]\" heads=\"[0, 1, 2, 3]\"}\n"
          "the cat sat on the mat\n```",
    "en": "# A real model, layer by layer\n\n```{.model-view #model layers=\"[0, 1]\" heads=\"[0, 1, 2, 3]\"}\n"
          "the cat sat on the mat\n```",
}

# Text on the slide, as projected: titles and token labels at least this size, or not at all.
LABEL_PT = 7.0
MAX_TOKENS = 40


@dataclass(frozen=True)
class ModelViewOptions(FigureOptions, ModelSentenceOptions):
    """``.model-view``: the attention weights of every layer and head of the pretrained model
    all-MiniLM-L6-v2 on a sentence, as a grid of small heatmaps (one row per layer, one column per
    head; bertviz's model view).

    Layers and heads are numbered from 0 (``L2 H5``: layer 2, head 5). Token labels are drawn
    only where they are readable (7 pt on the slide): a whole 6 × 12 grid has none, and says so."""

    layers: tuple[int, ...] | None = option(None, optional(int_list(0, LAYERS - 1)),
                                            help=f"the layers shown, e.g. [0, 1] (from 0; default: all {LAYERS})")
    heads: tuple[int, ...] | None = option(None, optional(int_list(0, HEADS - 1)),
                                           help=f"the heads shown, e.g. [0, 3] (from 0; default: all {HEADS})")
    special: bool = option(True, as_bool, help="show the rows and columns of [CLS] and [SEP] (false: hide them; "
                                               "the rows shown then sum to less than 1)")
    cmap: str = option("viridis", as_choice(*COLORMAPS), help="colormap of the weights")

    def caption_fields(self) -> dict:
        fields = super().caption_fields()
        fields["layers"] = fields["layers"] or ", ".join(map(str, range(LAYERS)))
        fields["heads"] = fields["heads"] or ", ".join(map(str, range(HEADS)))
        return fields


class ModelViewData(TypedDict):
    """What ``.model-view`` computes (``<id>.json``)."""

    kind: str
    model: str  # "all-MiniLM-L6-v2"
    sentence: str
    tokens: list[str]  # L WordPiece tokens, [CLS] first, [SEP] last
    layers: list[int]  # the R layers shown
    heads: list[int]  # the C heads shown
    shown: list[int]  # the positions whose rows and columns are drawn (all, or all but [CLS] and [SEP])
    weights: list[list[Matrix]]  # (R, C, L, L): weights[r][c] = layer layers[r], head heads[c]; rows sum to 1


def compute(options: ModelViewOptions, device: str = "cpu") -> ModelViewData:
    """The model's weights on the sentence, for the layers and heads asked (the model runs on the CPU)."""
    from filters.kinds._pretrained import run

    found = run(options.sentence, max_tokens=MAX_TOKENS)
    layers = list(options.layers or range(LAYERS))
    heads = list(options.heads or range(HEADS))
    L = len(found.tokens)
    shown = list(range(L)) if options.special else list(range(1, L - 1))
    return {
        "kind": "model-view", "model": MODEL_NAME, "sentence": options.sentence, "tokens": found.tokens,
        "layers": layers, "heads": heads, "shown": shown,
        "weights": [[found.weights[layer, head].tolist() for head in heads] for layer in layers],
    }


def draw(data: ModelViewData, options: ModelViewOptions, labels: dict):
    """One small heatmap per (layer, head), one colour scale; titled ``L2 H5`` each when the titles
    fit, else the grid's rows and columns are; token labels only where they are readable."""
    import numpy as np

    from filters.figures.heatmap import WEIGHT_RANGE
    from filters.figures.render import projected_scale, slide_figure

    weights = np.asarray(data["weights"], dtype=float)  # (R, C, L, L)
    shown = data["shown"]
    weights = weights[:, :, shown][:, :, :, shown]
    tokens = [data["tokens"][i] for i in shown]
    R, C = weights.shape[:2]
    # never wider than 4.6 : 2.6, so that at its height on the slide it is no wider than the text
    fig = slide_figure((4.6, min(3.4, max(2.6, 0.9 + 4.0 * R / C))), options.height)
    scale = projected_scale(fig, options.height)
    size = LABEL_PT / scale  # figure points
    axes = fig.subplots(R, C, squeeze=False)
    for (r, c), ax in _cells(axes):
        image = ax.imshow(weights[r, c], cmap=options.cmap, vmin=WEIGHT_RANGE[0], vmax=WEIGHT_RANGE[1],
                          interpolation="nearest", aspect="auto")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.spines[:].set_visible(False)
    fig.colorbar(image, ax=axes, label=labels["weight"], fraction=0.04, pad=0.02, aspect=30)
    titled = _title_panels(fig, axes, data, size)
    if not _label_tokens(fig, axes, tokens, size, scale):
        note = labels["no_token_labels"] if titled else labels["no_token_labels_grid"]
        fig.suptitle(note, fontsize=size, y=0.0, va="bottom")  # at the foot, under the grid
        fig.get_layout_engine().set(rect=(0, 0.1, 1, 0.9))
    return fig


def _points(ax) -> tuple[float, float]:
    """Width and height of ``ax`` in figure points."""
    box = ax.get_window_extent()
    return box.width * 72 / ax.figure.dpi, box.height * 72 / ax.figure.dpi


def _title_panels(fig, axes, data, size: float) -> bool:
    """Each panel titled ``L2 H5`` at ``size`` when that fits its width (returns True); else the
    top row is titled with its heads (``H5``) and the first column with its layers (``L2``)."""
    fig.draw_without_rendering()
    width, _ = _points(axes[0, 0])
    longest = max(len(f"L{layer} H{head}") for layer in data["layers"] for head in data["heads"])
    each = width >= longest * 0.62 * size
    for (r, c), ax in _cells(axes):
        layer, head = data["layers"][r], data["heads"][c]
        if each:
            ax.set_title(f"L{layer} H{head}", fontsize=size, pad=2)
        else:
            if r == 0:
                ax.set_title(f"H{head}", fontsize=size, pad=2)
            if c == 0:
                ax.set_ylabel(f"L{layer}", fontsize=size, rotation=0, ha="right", va="center", labelpad=2)
    return each


def _cells(axes):
    import numpy as np

    return np.ndenumerate(axes)


def _label_tokens(fig, axes, tokens: list[str], size: float, scale: float) -> bool:
    """Query labels on the first column, key labels on the bottom row, at ``size``, if every row
    and column of a panel is at least as tall as the text (else none: returns False)."""
    R, C = axes.shape
    for (r, c), ax in _cells(axes):
        if c == 0:
            ax.set_yticks(range(len(tokens)), labels=tokens, fontsize=size)
        if r == R - 1:
            ax.set_xticks(range(len(tokens)), labels=tokens, fontsize=size, rotation=90)
        ax.tick_params(length=0, pad=1)
    fig.draw_without_rendering()
    width, height = _points(axes[0, 0])
    if min(width, height) / len(tokens) >= size * 0.95:
        return True
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    return False


KIND = Kind("model-view", ModelViewOptions, compute, output="figure", draw=draw, cost=3, examples=EXAMPLES,
            requires=missing, labels={
    "es": {"no_token_labels": "Filas: queries; columnas: keys; tokens en orden, de [CLS] a [SEP]\n"
                              "(sus nombres no caben a un tamaño legible)",
           "no_token_labels_grid": "L: capa, H: cabeza. Filas: queries; columnas: keys; de [CLS] a [SEP]\n"
                                   "(los nombres de los tokens no caben a un tamaño legible)"},
    "en": {"no_token_labels": "Rows: queries; columns: keys; tokens in order, [CLS] to [SEP]\n"
                              "(too many to label at a readable size)",
           "no_token_labels_grid": "L: layer, H: head. Rows: queries; columns: keys; [CLS] to [SEP]\n"
                                   "(too many tokens to label at a readable size)"},
}, captions={
    "es": "Pesos de atención de las capas {layers} y cabezas {heads} del modelo preentrenado all-MiniLM-L6-v2 "
          "sobre «{sentence}».",
    "en": "Attention weights of layers {layers} and heads {heads} of the pretrained all-MiniLM-L6-v2 on "
          "“{sentence}”.",
})
