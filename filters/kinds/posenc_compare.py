"""``.posenc-compare``: four ways to give attention a sense of position, side by side, as the
similarity between positions each one induces — who depends on the *relative* position ``j − i``?

````markdown
```{.posenc-compare #fig-posiciones positions=24}
```
````
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from filters.blocks.kind import Kind, Matrix, as_list
from filters.blocks.options import DIVERGING, FigureOptions, option
from filters.blocks.parsers import as_choice, as_int, as_positive_float, as_seed
from filters.errors import BlockError

ENCODINGS = ("sinusoidal", "learned", "rope", "alibi")

# This kind's frame in the starter deck of `attnslides new`, in each language.
EXAMPLES = {
    "es": "# Cuatro codificaciones de posición\n\n```{.posenc-compare #codificaciones positions=24}\n```",
    "en": "# Four position encodings\n\n```{.posenc-compare #encodings positions=24}\n```",
}


def _encodings(value) -> tuple[str, ...]:
    """``sinusoidal,rope`` or ``[learned, alibi]`` → a tuple of known encodings, in that order."""
    from filters.blocks.parsers import str_list

    if isinstance(value, str) and not value.strip().startswith("["):
        value = [part for part in value.replace(",", " ").split() if part]
    names = str_list(value)
    for name in names:
        as_choice(*ENCODINGS)(name)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"expected some of {', '.join(ENCODINGS)}, each once, got {list(names)}")
    return names


_encodings.__doc__ = f"list of some of {', '.join(ENCODINGS)}"


@dataclass(frozen=True)
class PosencCompareOptions(FigureOptions):
    """``.posenc-compare``: sinusoidal, learned (untrained), RoPE and ALiBi positions side by side, as
    the similarity each induces between positions i and j; only a diagonal pattern is relative.

    sinusoidal: ⟨P_i, P_j⟩ (Vaswani et al. 2017, §3.5); learned: cosine of two rows of a seeded,
    untrained table; RoPE: ⟨R_i q, R_j q⟩ for one seeded vector q (Su et al. 2021); ALiBi: the bias
    −m·|i − j| of the first of 8 heads (Press et al. 2021). Each panel is scaled to [−1, 1]."""

    positions: int = option(24, as_int(2, 64), help="number of positions L (rows and columns of each panel)")
    d_model: int = option(64, as_int(2, 1024), help="width of the encodings (even)")
    base: float = option(10000.0, as_positive_float, help="wavelength base of sinusoidal and RoPE (10000)")
    encodings: tuple[str, ...] = option(ENCODINGS, _encodings, help=f"which to show, in order: {', '.join(ENCODINGS)}")
    seed: int = option(0, as_seed, help="seed of the learned table and of RoPE's vector q")
    cmap: str = option("RdBu_r", as_choice(*DIVERGING), help="a diverging colormap (values in [-1, 1])")

    def validate(self) -> None:
        super().validate()
        if self.d_model % 2:
            raise BlockError(f"RoPE rotates pairs of coordinates: d_model must be even, got {self.d_model}",
                             key="d_model")


class PosencCompareData(TypedDict):
    """What ``.posenc-compare`` computes (``<id>.json``)."""

    kind: str
    positions: int
    d_model: int
    base: float
    seed: int
    device: str
    encodings: list[str]
    similarity: dict[str, Matrix]  # per encoding, (L, L): rows i, columns j, before scaling to [−1, 1]
    alibi_slope: float  # m of the head shown


def compute(options: PosencCompareOptions, device: str = "cpu") -> PosencCompareData:
    """The ``(L, L)`` similarity between positions of each encoding (see the options)."""
    import torch
    import torch.nn.functional as F

    from engine.device import pick
    from engine.positional import LearnedPositionalEmbedding, alibi_bias, alibi_slopes, rotary_embedding, sinusoidal_encoding

    dev = pick(device)
    L, d = options.positions, options.d_model
    found = {}
    with torch.no_grad():
        if "sinusoidal" in options.encodings:
            P = sinusoidal_encoding(L, d, options.base, device=dev)  # (L, d)
            found["sinusoidal"] = P @ P.T / (d / 2)  # (L, L): 1 on the diagonal
        if "learned" in options.encodings:
            P = LearnedPositionalEmbedding(L, d, seed=options.seed).to(dev)(L)  # (L, d)
            found["learned"] = F.normalize(P, dim=-1) @ F.normalize(P, dim=-1).T  # (L, L) cosines
        if "rope" in options.encodings:
            q = torch.randn(d, generator=torch.Generator().manual_seed(options.seed)).to(dev)  # (d,)
            rotated = rotary_embedding(q.expand(L, d), base=options.base)  # (L, d): R_i q at each position i
            found["rope"] = rotated @ rotated.T / (q @ q)  # (L, L)
        if "alibi" in options.encodings:
            found["alibi"] = alibi_bias(8, L, device=dev)[0]  # (L, L): head 1 of 8
    return {"kind": "posenc-compare", "positions": L, "d_model": d, "base": options.base, "seed": options.seed,
            "device": dev.type, "encodings": list(options.encodings),
            "similarity": {name: as_list(found[name]) for name in options.encodings},
            "alibi_slope": float(alibi_slopes(8)[0])}


def draw(data: PosencCompareData, options: PosencCompareOptions, labels: dict):
    """One panel per encoding, each scaled to [−1, 1] by its largest magnitude, one colorbar; four
    panels in a 2 × 2 grid, or in one row when the figure is low. Only the outer panels carry the
    position ticks and the ``i``/``j`` labels (the same for all)."""
    import numpy as np

    from filters.figures.render import before_save, current_page, shrink_to_fit, slide_figure, wrap_axis_label

    n = len(data["encodings"])
    page = current_page()
    # a narrow page (a column) has no room for four panels in a row, whatever the height
    grid = n == 4 and (page.inches(options.height) >= GRID_INCHES or page.width_inches < 4)
    rows, cols = (2, 2) if grid else (1, n)
    fig = slide_figure((4.0, 3.4) if rows == 2 else (1.6 * n + 1.0, 2.4), options.height)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    L = data["positions"]
    ticks = sorted({0, L // 2, L - 1})
    for index, (ax, name) in enumerate(zip(axes, data["encodings"], strict=True)):
        values = np.asarray(data["similarity"][name])
        image = ax.imshow(values / np.abs(values).max(), cmap=options.cmap, vmin=-1, vmax=1, interpolation="nearest")
        # in a column the panels are ~60 pt wide: titles a little smaller than the style's, not all texts
        narrow = page.width_inches < 4
        title = labels[f"posenc_{name}"].replace(" (", "\n(") if narrow else labels[f"posenc_{name}"]  # two lines
        ax.set_title(title, fontsize=8 if narrow else None)
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        row, col = divmod(index, cols)
        if row == rows - 1:
            ax.set_xlabel("j")
        else:
            ax.tick_params(labelbottom=False)
        if col == 0:
            ax.set_ylabel("i", rotation=0, labelpad=6)
        else:
            ax.tick_params(labelleft=False)
        for spine in ax.spines.values():
            spine.set_visible(False)
    bar = fig.colorbar(image, ax=list(axes), label=labels["posenc_similarity"], fraction=0.05, pad=0.06,
                       shrink=0.8 if grid else 1.0)
    before_save(fig, _thin_ticks)
    before_save(fig, lambda fig: wrap_axis_label(bar.ax, "y"))  # a low figure: «similitud / (escalada)»
    before_save(fig, shrink_to_fit)
    return fig


# Under this height (inches) four panels stand in one row: in a 2 × 2 grid they would be too small
# for their ticks.
GRID_INCHES = 2.2


def _thin_ticks(fig) -> None:
    """Hide the position tick labels that would run together on small panels (0, 32, 63)."""
    from filters.figures.render import thin_tick_labels

    for ax in fig.axes[:-1]:  # the last axes is the colour bar
        thin_tick_labels(ax, "x")
        thin_tick_labels(ax, "y")


# The words of this figure besides the shared ones (filters.blocks.labels), in every language.
LABELS = {
    "es": {"posenc_sinusoidal": "sinusoidal", "posenc_learned": "aprendida\n(sin entrenar)", "posenc_rope": "RoPE",
           "posenc_alibi": "ALiBi (sesgo)", "posenc_similarity": "similitud (escalada)"},
    "en": {"posenc_sinusoidal": "sinusoidal", "posenc_learned": "learned\n(untrained)", "posenc_rope": "RoPE",
           "posenc_alibi": "ALiBi (bias)", "posenc_similarity": "similarity (scaled)"},
}


KIND = Kind("posenc-compare", PosencCompareOptions, compute, output="figure", draw=draw, cost=1, labels=LABELS,
            examples=EXAMPLES, captions={
    "es": "Similitud entre las posiciones $i$ y $j$ según cada codificación ($d_{{\\mathrm{{model}}}} = {d_model}$): "
          "solo las diagonales dependen de la distancia $j - i$.",
    "en": "Similarity between positions $i$ and $j$ under each encoding ($d_{{\\mathrm{{model}}}} = {d_model}$): "
          "only diagonal patterns depend on the distance $j - i$.",
})
