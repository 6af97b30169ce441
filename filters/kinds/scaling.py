"""``.scaling``: why ``QKᵀ`` is divided by ``√d_k`` — how peaked softmax gets as ``d_k`` grows,
with and without the scale.

````markdown
```{.scaling #fig-escalado d_k="[1, 4, 16, 64, 256, 1024]"}
```
````
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from filters.blocks.kind import Kind
from filters.blocks.options import FigureOptions, option

# This kind's frame in the starter deck of `attnslides new`, in each language.
from filters.blocks.parsers import as_int, as_seed, int_list
from filters.errors import BlockError

EXAMPLES = {
    "es": "# ¿Por qué dividir por $\\sqrt{d_k}$?\n\n```{.scaling #escala}\n```",
    "en": "# Why divide by $\\sqrt{d_k}$?\n\n```{.scaling #scale}\n```",
}

@dataclass(frozen=True)
class ScalingOptions(FigureOptions):
    """``.scaling``: why scores are divided by √d_k — how peaked softmax gets as d_k grows, with and
    without the scale (Vaswani et al. 2017, §3.2.1, footnote 4), on random unit-variance q and k."""

    d_k: tuple[int, ...] = option((1, 4, 16, 64, 256, 1024), int_list(1, 65536),
                                  help="the widths d_k to try, e.g. [1, 16, 256]")
    keys: int = option(8, as_int(2, 1024), help="number of keys S each query attends over")
    samples: int = option(512, as_int(1, 100000), help="random queries averaged per width")
    seed: int = option(0, as_seed, help="seed of the random queries and keys")

    def validate(self) -> None:
        super().validate()
        if len(self.d_k) < 2:
            raise BlockError("give at least two widths", key="d_k")
        if max(self.d_k) * self.keys * self.samples > 2**27:
            raise BlockError(f"max(d_k) × keys × samples = {max(self.d_k) * self.keys * self.samples:,} numbers is too "
                             f"many to draw while building a slide (at most {2**27:,}); lower one of them",
                             key="d_k" if max(self.d_k) > 4096 else "samples")


class ScalingData(TypedDict):
    """What ``.scaling`` computes (``<id>.json``): one value per ``d_k`` in each list."""

    kind: str
    d_k: list[int]
    keys: int
    samples: int
    seed: int
    device: str
    max_weight_unscaled: list[float]  # mean largest weight, scores QKᵀ; in [1/keys, 1]
    max_weight_scaled: list[float]  # the same, scores QKᵀ/√d_k
    score_std_unscaled: list[float]  # standard deviation of the scores: √d_k in theory
    score_std_scaled: list[float]  # 1 in theory


def compute(options: ScalingOptions, device: str = "cpu") -> ScalingData:
    """How peaked ``softmax(q·k)`` is, with and without the ``1/√d_k`` scale, as ``d_k`` grows.

    For each ``d_k``: ``samples`` queries and ``samples × keys`` keys with independent N(0, 1)
    entries (so ``q·k`` has variance ``d_k``, §3.2.1 footnote 4), attention through the engine with
    ``scale = 1`` and with the default ``1/√d_k``. Reports the mean of each query's largest weight
    (``1/keys`` = uniform, 1 = one-hot: softmax saturated, its gradient vanishing) and the standard
    deviation of the scores.
    """
    import math

    import torch

    from engine.attention import scaled_dot_product_attention
    from engine.device import pick

    dev = pick(device)
    generator = torch.Generator().manual_seed(options.seed)
    rows = {"max_weight_unscaled": [], "max_weight_scaled": [], "score_std_unscaled": [], "score_std_scaled": []}
    with torch.no_grad():
        for d_k in options.d_k:
            q = torch.randn(options.samples, 1, d_k, generator=generator).to(dev)  # (N, 1, d_k): one query each
            k = torch.randn(options.samples, options.keys, d_k, generator=generator).to(dev)  # (N, S, d_k)
            for name, scale in (("unscaled", 1.0), ("scaled", None)):
                _, weights = scaled_dot_product_attention(q, k, k, scale=scale)  # (N, 1, S)
                used = 1.0 if scale else 1.0 / math.sqrt(d_k)
                scores = (q @ k.transpose(-2, -1)) * used  # (N, 1, S)
                rows[f"max_weight_{name}"].append(float(weights.amax(-1).mean()))
                rows[f"score_std_{name}"].append(float(scores.std()))
    return {"kind": "scaling", "d_k": list(options.d_k), "keys": options.keys, "samples": options.samples,
            "seed": options.seed, "device": dev.type, **rows}


# The words of this figure besides the shared ones (filters.blocks.labels), in every language.
LABELS = {
    "es": {"d_k": "$d_k$ (escala log.)", "max_weight": "peso máximo medio",
           "unscaled": r"sin escalar: $QK^T$", "scaled": r"escalado: $QK^T/\sqrt{d_k}$",
           "uniform": "uniforme: 1/{keys} (n.º de claves)"},
    "en": {"d_k": "$d_k$ (log scale)", "max_weight": "mean largest weight",
           "unscaled": r"unscaled: $QK^T$", "scaled": r"scaled: $QK^T/\sqrt{d_k}$",
           "uniform": "uniform: 1/{keys} (number of keys)"},
}


def curves(ax, d_k, unscaled, scaled, *, keys: int, labels: dict):
    """Mean largest softmax weight against ``d_k`` (log axis), without and with the ``1/√d_k`` scale.
    ``unscaled``/``scaled``: one value in [1/keys, 1] per ``d_k``. Returns the lines."""
    from filters.figures.render import before_save, shrink_to_fit, thin_tick_labels, wrap_axis_label

    lines = ax.plot(d_k, unscaled, "o-", label=labels["unscaled"], zorder=3)
    lines += ax.plot(d_k, scaled, "s-", label=labels["scaled"], zorder=3)
    # under the data: a curve that reaches the uniform level stays visible on it
    lines.append(ax.axhline(1 / keys, color="0.5", lw=1, ls="--", label=labels["uniform"].format(keys=keys), zorder=1))
    ax.set_xscale("log", base=2)
    ax.set_xticks(d_k, labels=[str(d) for d in d_k])
    before_save(ax.figure, lambda fig: thin_tick_labels(ax))  # many widths: labels never run together
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(labels["d_k"])
    ax.set_ylabel(labels["max_weight"])
    # off the axes, not on the curves (which cross the whole width): under them where the figure is
    # tall enough, else beside them (a figure.legend "outside": the layout makes room for it)
    tall = ax.figure.get_figheight() >= LEGEND_BELOW_INCHES or ax.figure.get_figwidth() < 4
    ax.figure.legend(frameon=False, loc="outside lower center" if tall else "outside right center", ncols=1)
    before_save(ax.figure, lambda fig: wrap_axis_label(ax, "y"))  # a low plot: «peso máximo / medio»
    before_save(ax.figure, shrink_to_fit)
    return lines


# Under this height (inches) the legend's three lines under the axes would leave them no room: it
# goes beside them, in a wider figure.
LEGEND_BELOW_INCHES = 2.2


def draw(data: ScalingData, options: ScalingOptions, labels: dict):
    """The two curves and the uniform level (the legend under them, or beside them when the figure
    is low)."""
    from filters.figures.render import current_page, slide_figure

    page = current_page()
    # beside the axes only on a page wide enough for both (a column keeps the legend under them)
    low = page.inches(options.height) < LEGEND_BELOW_INCHES and page.width_inches >= 4
    fig = slide_figure((9.0, 2.4) if low else (4.4, 3.2), options.height)
    curves(fig.add_subplot(), data["d_k"], data["max_weight_unscaled"], data["max_weight_scaled"],
           keys=data["keys"], labels=labels)
    return fig


KIND = Kind("scaling", ScalingOptions, compute, output="figure", draw=draw, cost=1, labels=LABELS, examples=EXAMPLES, captions={
    "es": "Peso máximo del softmax según $d_k$, con y sin dividir por $\\sqrt{{d_k}}$.",
    "en": "Largest softmax weight against $d_k$, with and without dividing by $\\sqrt{{d_k}}$.",
})
