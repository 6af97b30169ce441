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
    fit, else the grid's rows and columns are; token labels only where they are readable.

    The grid is laid out once, from the text's measured extents (:class:`_Layout`), not by
    constrained layout: that would lay out its 72 panels on each of three draws (4 s a figure)."""
    import numpy as np

    from filters.figures.heatmap import WEIGHT_RANGE
    from filters.figures.render import current_page, projected_scale, slide_figure

    weights = np.asarray(data["weights"], dtype=float)  # (R, C, L, L)
    shown = data["shown"]
    weights = weights[:, :, shown][:, :, :, shown]
    tokens = [data["tokens"][i] for i in shown]
    R, C = weights.shape[:2]
    tall = min(3.4, max(2.6, 0.9 + 4.0 * R / C))
    # 4.6 wide for 2.6 high fits the text's width at the usual heights; a low figure (40 %) takes
    # the text's width, else its twelve head titles and its note have no room
    page = current_page()
    wide = max(4.6, min(3.6, page.width_inches / page.inches(options.height)) * tall)
    fig = slide_figure((wide, tall), options.height, layout="none")
    size = LABEL_PT / projected_scale(fig, options.height)  # figure points
    layout = _Layout(fig, R, C, size, labels["weight"])
    longest = max(len(f"L{layer} H{head}") for layer in data["layers"] for head in data["heads"])
    each = layout.cell(titles="none")[0] >= longest * 0.62 * size
    titles = "each" if each else "grid"
    width, height = layout.cell(titles=titles, tokens=tokens)
    labelled = min(width, height) / len(tokens) >= size * 0.95
    note = None if labelled else layout.wrap(labels["no_token_labels"] if each else labels["no_token_labels_grid"])
    axes, cax = layout.place(titles=titles, tokens=tokens if labelled else None, note=note)
    for (r, c), ax in _cells(axes):
        image = ax.imshow(weights[r, c], cmap=options.cmap, vmin=WEIGHT_RANGE[0], vmax=WEIGHT_RANGE[1],
                          interpolation="nearest", aspect="auto")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.spines[:].set_visible(False)
    bar = fig.colorbar(image, cax=cax, label=layout.bar_label)
    # ticks of one decimal (as _Layout measured them); three on a short bar
    short = cax.get_position().height * layout.H < 80
    bar.set_ticks([0.0, 0.5, 1.0] if short else np.linspace(0, 1, 6), labels=None)
    bar.ax.yaxis.set_major_formatter("{x:.1f}")
    step = 1 if each else layout.title_step([f"H{head}" for head in data["heads"]], width)
    _title_panels(axes, data, size, each, step)
    if labelled:
        _label_tokens(axes, tokens, size)
    else:
        # at the foot, under the grid (the colour bar runs down beside it)
        fig.text((layout.W - layout.right) / 2 / layout.W, _PAD / layout.H, note, fontsize=size, ha="center",
                 va="bottom")
    return fig


# Figure points: around the figure, between panels, between a text and what it labels.
_PAD, _GAP, _TITLE_PAD, _LABEL_PAD = 3.0, 4.0, 2.0, 2.0
_TICK_PAD = 1.0  # tokens: no tick marks, 1 pt from the panel


class _Layout:
    """Where a figure's R × C panels and colorbar go (figure points), from the extents of the
    text around them, measured without drawing the figure."""

    def __init__(self, fig, R: int, C: int, size: float, bar_label: str):
        from matplotlib import rcParams
        from matplotlib.backends.backend_agg import RendererAgg
        from matplotlib.font_manager import FontProperties

        self.fig, self.R, self.C, self.size = fig, R, C, size
        self.W, self.H = fig.get_figwidth() * 72, fig.get_figheight() * 72
        self._renderer = RendererAgg(1, 1, 72)  # at 72 dpi, pixels are points
        self._font = FontProperties(size=size)
        ticks = FontProperties(size=rcParams["ytick.labelsize"])
        tick_width = max(self._extent(f"{v:.1f}", ticks)[0] for v in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0))
        label_font = FontProperties(size=rcParams["axes.labelsize"])
        # the colour bar's label beside a bar shorter than it (a low figure): in two lines
        self.bar_label = bar_label
        if self._extent(bar_label, label_font)[0] > 0.6 * self.H and " " in bar_label:
            words = bar_label.split(" ")
            self.bar_label = " ".join(words[:(len(words) + 1) // 2]) + "\n" + " ".join(words[(len(words) + 1) // 2:])
        lines = len(self.bar_label.splitlines())  # matplotlib spaces lines 1.2 of their size apart
        label_height = self._extent("Hg", label_font)[1] + (lines - 1) * 1.2 * label_font.get_size_in_points()
        self.tick_height = self._extent("0.0", ticks)[1]
        self.bar_width = max(5.0, self.H / 40)
        tick = rcParams["ytick.major.size"] + rcParams["ytick.major.pad"]
        # the colorbar: a gap, the bar, its ticks and their labels, its label (rotated)
        self.right = _GAP * 2 + self.bar_width + tick + tick_width + rcParams["axes.labelpad"] + label_height + _PAD

    def _extent(self, text: str, font=None) -> tuple[float, float]:
        """Width and height (with descent) of one line of ``text``, in figure points."""
        width, height, _ = self._renderer.get_text_width_height_descent(text, font or self._font, ismath=False)
        return width, height

    def wrap(self, note: str) -> str:
        """``note``'s lines broken at spaces to fit under the panels (the colour bar beside it)."""
        from filters.figures.render import break_lines

        return "\n".join(break_lines(note, self.W - self.right - _PAD, lambda line: self._extent(line)[0]))

    def title_step(self, titles: list[str], width: float) -> int:
        """Title every ``step``-th column of panels ``width`` figure points wide (with a gap), so
        that no two titles run together (``H10``, ``H11`` above narrow panels)."""
        widest = max(self._extent(title)[0] for title in titles)
        step = 1
        while step * (width + _GAP) < widest + _GAP and step < len(titles):
            step += 1
        return step

    def _margins(self, titles: str, tokens: list[str] | None, note: str | None) -> tuple[float, float, float, float]:
        """Left, bottom, top margins and the height between rows, in figure points."""
        title = self._extent("L0 H0")[1] + _TITLE_PAD
        words = max((self._extent(token)[0] for token in tokens), default=0.0) + _TICK_PAD if tokens else 0.0
        left = _PAD + words + (self._extent("L00")[0] + _LABEL_PAD if titles == "grid" else 0.0)
        bottom = _PAD + words + (len(note.splitlines()) * self.size * 1.2 + 2 * _GAP if note else 0.0)
        top = _PAD + (title if titles != "none" else 0.0)
        return left, bottom, top, _GAP + (title if titles == "each" else 0.0)

    def cell(self, *, titles: str, tokens: list[str] | None = None, note: str | None = None) -> tuple[float, float]:
        """Width and height of each panel, in figure points, for these titles (``"each"``,
        ``"grid"`` or ``"none"``), token labels and note."""
        left, bottom, top, between = self._margins(titles, tokens, note)
        return ((self.W - left - self.right - (self.C - 1) * _GAP) / self.C,
                (self.H - bottom - top - (self.R - 1) * between) / self.R)

    def place(self, *, titles: str, tokens: list[str] | None, note: str | None):
        """The panels, an (R, C) array of axes, and the colorbar's axes, laid out."""
        left, bottom, top, between = self._margins(titles, tokens, note)
        width, height = self.cell(titles=titles, tokens=tokens, note=note)
        W, H = self.W, self.H
        axes = self.fig.subplots(self.R, self.C, squeeze=False, gridspec_kw=dict(
            left=left / W, right=(W - self.right) / W, bottom=bottom / H, top=(H - top) / H,
            wspace=_GAP / width, hspace=between / height))
        # the bar's top a half tick label under the panels' top: its «1.0» clear of the last title
        drop = self.tick_height / 2 + _TITLE_PAD if titles != "none" else 0.0
        # beside the note too, when there is one: a bar as long as it can be, for its label
        low = _PAD + self.tick_height / 2 if note else bottom
        cax = self.fig.add_axes(((W - self.right + 2 * _GAP) / W, low / H, self.bar_width / W,
                                 (H - top - low - drop) / H))
        return axes, cax


def _title_panels(axes, data, size: float, each: bool, step: int = 1) -> None:
    """Each panel titled ``L2 H5`` at ``size`` (``each``); else the top row is titled with its
    heads (``H5``; every ``step``-th head when the panels are narrower than their titles) and the
    first column with its layers (``L2``)."""
    for (r, c), ax in _cells(axes):
        layer, head = data["layers"][r], data["heads"][c]
        if each:
            ax.set_title(f"L{layer} H{head}", fontsize=size, pad=_TITLE_PAD)
        else:
            if r == 0 and c % step == 0:
                ax.set_title(f"H{head}", fontsize=size, pad=_TITLE_PAD)
            if c == 0:
                ax.set_ylabel(f"L{layer}", fontsize=size, rotation=0, ha="right", va="center", labelpad=_LABEL_PAD)


def _cells(axes):
    import numpy as np

    return np.ndenumerate(axes)


def _label_tokens(axes, tokens: list[str], size: float) -> None:
    """Query labels on the first column, key labels on the bottom row, at ``size``."""
    R, C = axes.shape
    for (r, c), ax in _cells(axes):
        if c == 0:
            ax.set_yticks(range(len(tokens)), labels=tokens, fontsize=size)
        if r == R - 1:
            ax.set_xticks(range(len(tokens)), labels=tokens, fontsize=size, rotation=90)
        ax.tick_params(length=0, pad=_TICK_PAD)


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
