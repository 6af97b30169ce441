"""``.posenc``: the sinusoidal positional encoding as a heatmap beside curves of a few dimensions.

````markdown
```{.posenc #fig-pe num_positions=100 d_model=64 dims="4,5,16,17"}
```
````
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from filters.blocks.kind import Kind, Matrix, as_list
from filters.blocks.options import COLORMAPS, DIVERGING, FigureOptions, option
from filters.blocks.parsers import as_choice, as_int, as_positive_float, int_list
from filters.errors import BlockError

# This kind's frame in the starter deck of `attnslides new`, in each language.
EXAMPLES = {
    "es": "# Codificación posicional\n\n```{.posenc #posiciones num_positions=60 d_model=32 dims=\"2,3,10,11\"}\n```",
    "en": "# Positional encoding\n\n```{.posenc #positions num_positions=60 d_model=32 dims=\"2,3,10,11\"}\n```",
}

@dataclass(frozen=True)
class PosencOptions(FigureOptions):
    """``.posenc``: the sinusoidal positional encoding (Vaswani et al. 2017, §3.5) as a heatmap
    (positions × dimensions) beside curves of a few dimensions against position."""

    num_positions: int = option(50, as_int(1, 10000), help="number of positions (rows of the heatmap)")
    d_model: int = option(64, as_int(1, 4096), help="width of the encoding (columns of the heatmap)")
    base: float = option(10000.0, as_positive_float, help="wavelength base (10000 in the paper)")
    dims: tuple[int, ...] = option((), int_list(0), help="dimensions drawn as curves, e.g. [0, 1, 8, 9] (default: "
                                   "those of 0, 1, 8, 9 below d_model)")
    cmap: str = option("RdBu_r", as_choice(*COLORMAPS, *DIVERGING),
                       help="colormap of the heatmap (its values lie in [-1, 1]: a diverging one suits them)")

    def validate(self) -> None:
        super().validate()
        if self.num_positions * self.d_model > 250_000:
            raise BlockError(f"{self.num_positions} positions × {self.d_model} dimensions is "
                             f"{self.num_positions * self.d_model:,} numbers, more than a figure shows and a few MB of "
                             "JSON hold (at most 250,000)", key="num_positions" if self.num_positions > 1000 else "d_model")
        bad = [d for d in self.dims if d >= self.d_model]
        if bad:
            raise BlockError(f"dimension(s) {bad} do not exist when d_model = {self.d_model}", key="dims")
        if len(self.dims) > 6:
            raise BlockError("at most 6 curves stay readable", key="dims")


class PosencData(TypedDict):
    """What ``.posenc`` computes (``<id>.json``)."""

    kind: str
    num_positions: int
    d_model: int
    base: float
    dims: list[int]
    device: str
    encoding: Matrix  # (num_positions, d_model), values in [-1, 1]


DEFAULT_DIMS = (0, 1, 8, 9)  # a fast pair and a slower pair of sine/cosine dimensions


def drawn_dims(options: PosencOptions) -> tuple[int, ...]:
    """The dimensions drawn as curves: the block's ``dims``, else those of :data:`DEFAULT_DIMS` that exist."""
    return options.dims or tuple(d for d in DEFAULT_DIMS if d < options.d_model)


def compute(options: PosencOptions, device: str = "cpu") -> PosencData:
    """The sinusoidal encoding ``P`` (Vaswani et al. 2017, §3.5), shape ``(num_positions, d_model)``."""
    from engine.device import pick
    from engine.positional import sinusoidal_encoding

    dev = pick(device)
    encoding = sinusoidal_encoding(options.num_positions, options.d_model, options.base, device=dev)
    return {
        "kind": "posenc",
        "num_positions": options.num_positions, "d_model": options.d_model, "base": options.base,
        "dims": list(drawn_dims(options)), "device": dev.type,
        "encoding": as_list(encoding),
    }


# The words of this figure besides the shared ones (filters.blocks.labels), in every language.
LABELS = {
    "es": {"posenc_heat": "codificación $P$", "posenc_curves": "algunas dimensiones",
           "sin": "sen", "cos": "cos", "dim": "{d} ({fn})", "dim_title": "dim.", "posenc_value": "valor de $P$"},
    "en": {"posenc_heat": "encoding $P$", "posenc_curves": "a few dimensions",
           "sin": "sin", "cos": "cos", "dim": "{d} ({fn})", "dim_title": "dim.", "posenc_value": "value of $P$"},
}


def heatmap(ax, encoding, *, cmap: str = "magma", labels: dict):
    """Draw the encoding, array of shape (num_positions, d_model), values in [-1, 1]: positions on
    rows, dimensions on columns. Returns the image."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    image = ax.imshow(np.asarray(encoding), cmap=cmap, vmin=-1, vmax=1, interpolation="nearest", aspect="auto")
    for axis in (ax.xaxis, ax.yaxis):  # a few round ticks: at a low height, more would run together
        axis.set_major_locator(MaxNLocator(nbins=3, integer=True))
    ax.set_xlabel(labels["dimension"])
    ax.set_ylabel(labels["position"])
    ax.set_title(labels["posenc_heat"], pad=8)  # clear of the first row's tick label, half above the axes
    return image


def curves(ax, encoding, dims, *, labels: dict, line_kws: dict | None = None, legend_below: bool = False):
    """Draw the columns ``dims`` of ``encoding`` (num_positions, d_model) against position.
    Even dimensions are sines, odd ones cosines (§3.5). Returns the lines."""
    import numpy as np

    encoding = np.asarray(encoding)
    positions = np.arange(encoding.shape[0])
    lines = []
    for d in dims:
        name = labels["sin"] if d % 2 == 0 else labels["cos"]
        lines += ax.plot(positions, encoding[:, d], label=labels["dim"].format(d=d, fn=name), **(line_kws or {}))
    ax.set_xlabel(labels["position"])
    ax.set_ylabel(labels["value"])
    ax.set_ylim(-1.1, 1.1)
    ax.set_yticks([-1, 0, 1])
    ax.set_title(labels["posenc_curves"])
    # beside the axes (under them in a narrow figure), not on the curves: inside, it would cover them
    style = dict(frameon=False, handlelength=1.0, alignment="left", columnspacing=0.6, labelspacing=0.3,
                 handletextpad=0.4)
    if legend_below:  # the figure's, "outside": the layout makes room for it under the lowest axes
        ax.figure.legend(handles=lines, loc="outside lower center", ncols=3, **style)
    else:
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), ncols=1 if len(dims) <= 3 else 2,
                  title=labels["dim_title"], borderaxespad=0.3, **style)
    return lines


def draw(data: PosencData, options: PosencOptions, labels: dict):
    """The heatmap (with its colorbar) beside the curves, or above them where the figure is narrow
    (a column): side by side, each would be too narrow for its labels."""
    from filters.figures.render import before_save, shrink_to_fit, slide_figure, thin_tick_labels

    fig = slide_figure((7.0, 2.6), options.height)  # as wide as the text allows: two panels and a legend
    narrow, low = fig.get_figwidth() * 72 < STACK_UNDER_PT, fig.get_figheight() * 72 < STACK_UNDER_PT / 2
    stacked = narrow and not low
    if narrow and low:  # room for one panel only: the encoding itself (the curves are its columns)
        heat_ax, curve_ax = fig.add_subplot(), None
    else:
        heat_ax, curve_ax = fig.subplots(2, 1) if stacked else fig.subplots(1, 2, width_ratios=[1, 1.1])
    image = heatmap(heat_ax, data["encoding"], cmap=options.cmap, labels=labels)
    # below the heatmap, named: beside it, it would read as the y axis of the curves (side by side)
    # low, its name is plain text (math is drawn at 10 pt, for its scripts; this one has none): it may then
    # give up points like the other labels, rather than run off a figure of a few lines' height
    name = labels["posenc_value"].replace("$", "") if low else labels["posenc_value"]
    fig.colorbar(image, ax=heat_ax, label=name, **(
        dict(fraction=0.08, pad=0.03, aspect=12) if narrow or low else
        dict(orientation="horizontal", location="bottom", fraction=0.07, pad=0.02, aspect=30)))
    if curve_ax is not None:
        curves(curve_ax, data["encoding"], data["dims"], labels=labels, legend_below=narrow)
    if low:  # the caption names the panels: their titles would crowd the axes out
        for ax in (heat_ax, curve_ax):
            if ax is not None:
                ax.set_title("")
    before_save(fig, shrink_to_fit)
    for axis in ("x", "y"):  # at 7 pt, 200 and 400 may still touch
        before_save(fig, lambda fig, axis=axis: thin_tick_labels(heat_ax, axis))
    return fig


# Narrower than this (figure points), the two panels go one above the other.
STACK_UNDER_PT = 250


KIND = Kind("posenc", PosencOptions, compute, output="figure", draw=draw, cost=2, labels=LABELS, examples=EXAMPLES, captions={
    "es": "Codificación posicional sinusoidal ($d_{{\\mathrm{{model}}}} = {d_model}$, base {base:g}).",
    "en": "Sinusoidal positional encoding ($d_{{\\mathrm{{model}}}} = {d_model}$, base {base:g}).",
})
