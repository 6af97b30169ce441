"""Arrays → figures: one renderer per figure kind, all in the deck's one style.

Plot helpers take an ``ax``, return the artists they drew, and take keyword-only options (the
matplotlib gallery's and seaborn's habit). No pyplot: each figure is a plain
:class:`matplotlib.figure.Figure`, so nothing global leaks between figures or processes.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.style
import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from filters.labels import LABELS

STYLE = Path(__file__).with_name("attnslides.mplstyle")

# Weights are probabilities: one fixed colour scale for every attention heatmap of a deck, so
# that two slides can be compared by eye.
WEIGHT_RANGE = (0.0, 1.0)


def _text_colour(rgba) -> str:
    """Black on light cells, white on dark ones (relative luminance, ITU-R BT.709)."""
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


def attention_heatmap(ax, weights, query_tokens, key_tokens, *, precision: int = 2, annotate: bool = True,
                      cmap: str = "viridis", labels: dict | None = None, text_kws: dict | None = None):
    """Draw attention weights as a heatmap: queries on rows, keys on columns.

    Args:
        ax: the axes to draw in.
        weights: array of shape (L, S), rows sum to 1 (a fully masked row is all zero).
        query_tokens: L row labels; key_tokens: S column labels.
        precision: decimals printed in each cell.
        annotate: print the weight in each cell.
        cmap: colormap name; the colour scale is fixed to [0, 1].
        labels: axis names (see :data:`LABELS`).
        text_kws: extra keyword arguments for the cell texts (copied, never changed).

    Returns:
        ``(image, texts)``: the :class:`~matplotlib.image.AxesImage` and the list of cell texts.
    """
    labels = labels or LABELS["es"]
    weights = np.asarray(weights, dtype=float)
    norm = Normalize(*WEIGHT_RANGE)
    image = ax.imshow(weights, cmap=cmap, norm=norm, interpolation="nearest", aspect="auto")
    ax.set_xticks(range(len(key_tokens)), labels=key_tokens, rotation=40, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(len(query_tokens)), labels=query_tokens)
    ax.set_xlabel(labels["key"])
    ax.set_ylabel(labels["query"])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    texts = []
    if annotate:
        kws = {"ha": "center", "va": "center", "fontsize": 7 if weights.shape[1] <= 8 else 6, **(text_kws or {})}
        colours = image.cmap(norm(weights))
        for i in range(weights.shape[0]):
            for j in range(weights.shape[1]):
                texts.append(ax.text(j, i, f"{weights[i, j]:.{precision}f}", color=_text_colour(colours[i, j]), **kws))
    return image, texts


def posenc_heatmap(ax, encoding, *, cmap: str = "magma", labels: dict | None = None):
    """Draw the positional encoding, array of shape (num_positions, d_model), values in [-1, 1]:
    positions on rows, dimensions on columns. Returns the image."""
    labels = labels or LABELS["es"]
    image = ax.imshow(np.asarray(encoding), cmap=cmap, vmin=-1, vmax=1, interpolation="nearest", aspect="auto")
    ax.set_xlabel(labels["dimension"])
    ax.set_ylabel(labels["position"])
    ax.set_title(labels["posenc_heat"])
    return image


def posenc_curves(ax, encoding, dims, *, labels: dict | None = None, line_kws: dict | None = None):
    """Draw the columns ``dims`` of ``encoding`` (num_positions, d_model) against position.
    Even dimensions are sines, odd ones cosines (§3.5). Returns the lines."""
    labels = labels or LABELS["es"]
    encoding = np.asarray(encoding)
    positions = np.arange(encoding.shape[0])
    lines = []
    for d in dims:
        name = labels["sin"] if d % 2 == 0 else labels["cos"]
        lines += ax.plot(positions, encoding[:, d], label=labels["dim"].format(d=d, fn=name), **(line_kws or {}))
    ax.set_xlabel(labels["position"])
    ax.set_ylabel(labels["value"])
    ax.set_ylim(-1.1, 1.95)  # room above the curves for the legend
    ax.set_yticks([-1, -0.5, 0, 0.5, 1])
    ax.set_title(labels["posenc_curves"])
    ax.legend(ncol=2, loc="upper center", frameon=False, handlelength=1.2, columnspacing=0.8, borderaxespad=0.1)
    return lines


def attention_figure(data: dict, spec, labels: dict) -> Figure:
    """The ``.attention`` figure: the heatmap and its colorbar."""
    fig = Figure(figsize=(4.2, 3.2), layout="constrained")
    ax = fig.add_subplot()
    image, _ = attention_heatmap(ax, data["weights"], data["tokens"], data["tokens"], precision=spec.precision,
                                 annotate=spec.annotate, cmap=spec.cmap, labels=labels)
    fig.colorbar(image, ax=ax, label=labels["weight"], fraction=0.06, pad=0.03)
    return fig


def posenc_figure(data: dict, spec, labels: dict) -> Figure:
    """The ``.posenc`` figure: heatmap (with colorbar) beside curves of a few dimensions."""
    fig = Figure(figsize=(5.4, 2.6), layout="constrained")
    heat_ax, curve_ax = fig.subplots(1, 2, width_ratios=[1.1, 1])
    image = posenc_heatmap(heat_ax, data["encoding"], cmap=spec.cmap, labels=labels)
    fig.colorbar(image, ax=heat_ax, fraction=0.08, pad=0.02)
    posenc_curves(curve_ax, data["encoding"], data["dims"], labels=labels)
    return fig


def permutation_figure(data: dict, spec, labels: dict) -> Figure:
    """The ``.permutation`` figure: the sentence's heatmap beside the permuted sentence's."""
    fig = Figure(figsize=(5.0, 2.75), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, weights, tokens, title in ((axes[0], data["weights"], data["tokens"], labels["original"]),
                                       (axes[1], data["permuted_weights"], data["permuted_tokens"], labels["permuted"])):
        image, _ = attention_heatmap(ax, weights, tokens, tokens, precision=spec.precision, annotate=spec.annotate,
                                     cmap=spec.cmap, labels=labels, text_kws={"fontsize": 6})
        ax.set_title(title)
    axes[1].set_ylabel("")
    fig.colorbar(image, ax=axes, label=labels["weight"], fraction=0.04, pad=0.02)
    fig.suptitle(labels["max_difference"].format(data["max_difference"]), fontsize=8)
    return fig


def scaling_curves(ax, d_k, unscaled, scaled, *, keys: int, labels: dict | None = None):
    """Mean largest softmax weight against ``d_k`` (log axis), without and with the ``1/√d_k`` scale.
    ``unscaled``/``scaled``: one value in [1/keys, 1] per ``d_k``. Returns the lines."""
    labels = labels or LABELS["es"]
    lines = ax.plot(d_k, unscaled, "o-", label=labels["unscaled"])
    lines += ax.plot(d_k, scaled, "s-", label=labels["scaled"])
    lines.append(ax.axhline(1 / keys, color="0.5", lw=1, ls="--", label=labels["uniform"].format(keys=keys)))
    ax.set_xscale("log", base=2)
    ax.set_xticks(d_k, labels=[str(d) for d in d_k])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(labels["d_k"])
    ax.set_ylabel(labels["max_weight"])
    ax.legend(frameon=False, loc="center right")
    return lines


def scaling_figure(data: dict, spec, labels: dict) -> Figure:
    """The ``.scaling`` figure."""
    fig = Figure(figsize=(4.4, 2.6), layout="constrained")
    scaling_curves(fig.add_subplot(), data["d_k"], data["max_weight_unscaled"], data["max_weight_scaled"],
                   keys=data["keys"], labels=labels)
    return fig


def trained_figure(data: dict, spec, labels: dict) -> Figure:
    """The ``.trained-attention`` figure: the learned weights, input symbols on columns and the
    model's output symbols on rows, titled with the held-out exact-match rate."""
    fig = Figure(figsize=(4.2, 3.2), layout="constrained")
    ax = fig.add_subplot()
    image, _ = attention_heatmap(ax, data["weights"], data["prediction"], data["tokens"], precision=spec.precision,
                                 annotate=spec.annotate, cmap=spec.cmap, labels=labels)
    ax.set_xticks(range(len(data["tokens"])), labels=data["tokens"], rotation=0, ha="center")
    ax.set_xlabel(labels["input"])
    ax.set_ylabel(labels["output"])
    ax.set_title(labels["accuracy"].format(held_out=data["config"]["held_out"], percent=100 * data["accuracy"]))
    fig.colorbar(image, ax=ax, label=labels["weight"], fraction=0.06, pad=0.03)
    return fig


FIGURES = {"attention": attention_figure, "posenc": posenc_figure, "permutation": permutation_figure,
           "scaling": scaling_figure, "trained-attention": trained_figure}


def render(data: dict, spec, path: Path, *, lang: str = "es") -> Figure:
    """Draw the figure of ``spec.kind`` from ``data`` and save it to ``path`` (format from its suffix).

    PDF and SVG are saved without a creation date, so the same numbers give the same bytes.
    Returns the figure (for tests that read back its geometry).
    """
    with matplotlib.style.context(STYLE):
        fig = FIGURES[spec.kind](data, spec, LABELS.get(lang, LABELS["en"]))
        save(fig, path)
    return fig


def save(fig: Figure, path: Path) -> None:
    fmt = Path(path).suffix.lstrip(".")
    metadata = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}.get(fmt)
    fig.savefig(path, format=fmt, metadata=metadata)


def warm_up() -> None:
    """Draw and save one tiny figure in memory: loads fonts, mathtext and the PDF/SVG back ends once,
    so that a worker forked afterwards starts warm (see :mod:`filters.warm`)."""
    import io

    with matplotlib.style.context(STYLE):
        fig = Figure(figsize=(1, 1), layout="constrained")
        ax = fig.add_subplot()
        ax.imshow(np.zeros((2, 2)), cmap="viridis")
        ax.set_title("$P$ ó")
        fig.colorbar(ax.images[0], ax=ax)
        for fmt in ("pdf", "png"):
            fig.savefig(io.BytesIO(), format=fmt)
