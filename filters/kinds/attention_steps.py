"""``.attention-steps``: a worked example, ``S = QKᵀ/√d_k``, ``A = softmax(S)``, ``O = AV``, typeset
as matrices and revealed one step per Beamer overlay (fragments in HTML). A text kind: no picture.

````markdown
```{.attention-steps #ej precision=2}
#| q: [[1, 0], [0, 1], [1, 1]]
#| k: [[1, 0], [0, 1], [1, 1]]
#| v: [[1, 2], [3, 4], [5, 6]]
```
````
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypedDict

from filters.blocks.kind import Kind, Matrix, as_list
from filters.blocks.options import Options, option

# This kind's frame in the starter deck of `attnslides new`, in each language.
from filters.blocks.parsers import as_bool, as_int, as_matrix, as_seed, optional
from filters.errors import BlockError
from filters.figures.matrices import bmatrix

EXAMPLES = {
    "es": "# Paso a paso, con máscara causal\n\n```{.attention-steps #pasos seed=1 causal=true}\n```",
    "en": "# Step by step, with a causal mask\n\n```{.attention-steps #steps seed=1 causal=true}\n```",
}

@dataclass(frozen=True)
class StepsOptions(Options):
    """``.attention-steps``: a worked example, S = QKᵀ/√d_k, A = softmax(S), O = AV, as LaTeX
    matrices revealed one step per overlay. Q, K, V are given, or drawn as small integers from a seed."""

    q: tuple | None = option(None, optional(as_matrix), help="queries, an L × d_k matrix such as [[1, 0], [0, 1]]")
    k: tuple | None = option(None, optional(as_matrix), help="keys, an S × d_k matrix")
    v: tuple | None = option(None, optional(as_matrix), help="values, an S × d_v matrix")
    seed: int = option(0, as_seed, help="seed drawing Q, K, V (integers -2..2) when they are not given")
    length: int = option(3, as_int(1, 6), help="number of tokens L = S when Q, K, V are drawn")
    d_k: int = option(2, as_int(1, 6), help="width of drawn queries and keys")
    d_v: int = option(2, as_int(1, 6), help="width of drawn values")
    causal: bool = option(False, as_bool, help="causal mask: query i sees keys up to i; masked scores show as -inf "
                                               "and their weights as 0")
    precision: int = option(2, as_int(0, 4), help="decimals shown in the matrices")
    overlays: bool = option(True, as_bool, help="reveal one step per Beamer overlay")

    def validate(self) -> None:
        super().validate()
        given = {name: getattr(self, name) for name in ("q", "k", "v")}
        if any(m is not None for m in given.values()) and None in given.values():
            missing = [name for name, m in given.items() if m is None]
            raise BlockError("give all of q, k and v, or none of them (then they are drawn from the seed)", key=missing[0])
        if self.q is None:
            return
        q, k, v = self.q, self.k, self.v
        if len(q[0]) != len(k[0]):
            raise BlockError(f"q has {len(q[0])} columns but k has {len(k[0])}: queries and keys share d_k", key="k")
        if len(k) != len(v):
            raise BlockError(f"k has {len(k)} rows but v has {len(v)}: one value per key", key="v")
        if max(len(q), len(k), len(q[0]), len(v[0])) > 6:
            raise BlockError("at most 6 × 6 matrices fit on a slide", key="q")


class StepsData(TypedDict):
    """What ``.attention-steps`` computes (``<id>.json``): every intermediate of eq. (1)."""

    kind: str
    device: str
    d_k: int
    precision: int
    q: Matrix  # (L, d_k)
    k: Matrix  # (S, d_k)
    v: Matrix  # (S, d_v)
    scale: float  # 1/√d_k
    causal: bool
    mask: list[list[bool]] | None  # (L, S), True = may attend; None without the causal mask
    scores: list[list[float | None]]  # (L, S) = QKᵀ·scale; null where masked (−∞)
    weights: Matrix  # (L, S) = softmax(scores), rows sum to 1 (masked entries 0)
    output: Matrix  # (L, d_v) = weights · V


def compute(options: StepsOptions, device: str = "cpu") -> StepsData:
    """Every intermediate of ``softmax(QKᵀ/√d_k) V`` for a small worked example (Vaswani et al.
    2017, §3.2.1, eq. (1)). Q, K, V are the block's, or integers in [-2, 2] drawn from
    ``options.seed`` (easy to redo by hand)."""
    import torch

    from engine.attention import scaled_dot_product_attention
    from engine.device import pick
    from engine.masks import causal_mask

    dev = pick(device)
    if options.q is None:
        generator = torch.Generator().manual_seed(options.seed)
        draw = lambda rows, cols: torch.randint(-2, 3, (rows, cols), generator=generator).double()  # noqa: E731
        q, k, v = draw(options.length, options.d_k), draw(options.length, options.d_k), draw(options.length, options.d_v)
    else:
        q, k, v = (torch.tensor(m, dtype=torch.float64) for m in (options.q, options.k, options.v))
    q, k, v = q.to(dev), k.to(dev), v.to(dev)
    d_k = q.shape[-1]
    scale = 1.0 / math.sqrt(d_k)
    mask = causal_mask(q.shape[0], k.shape[0], device=dev) if options.causal else None  # (L, S)
    with torch.no_grad():
        scores = (q @ k.T) * scale  # (L, S): the slide's first step, S = QKᵀ/√d_k
        output, weights = scaled_dot_product_attention(q, k, v, mask, scale=scale)  # (L, d_v), (L, S)
    shown = as_list(scores)
    if mask is not None:  # JSON has no −∞: a masked score is null
        shown = [[s if keep else None for s, keep in zip(row, keeps, strict=True)]
                 for row, keeps in zip(shown, mask.tolist(), strict=True)]
    return {
        "kind": "attention-steps", "device": dev.type, "d_k": d_k, "precision": options.precision,
        "q": as_list(q), "k": as_list(k), "v": as_list(v),
        "scale": scale,
        "causal": options.causal,
        "mask": None if mask is None else mask.tolist(),
        "scores": shown,
        "weights": as_list(weights),
        "output": as_list(output),
    }


def _is_integral(rows) -> bool:
    return all(float(x).is_integer() for row in rows for x in row)


def equations(data: StepsData, precision: int) -> list[str]:
    """The four steps as math (no ``$``): inputs, scores, weights, output."""
    inputs = precision if not all(_is_integral(data[m]) for m in "qkv") else 0
    d_k = data["d_k"]
    root = str(int(math.sqrt(d_k))) if math.isqrt(d_k) ** 2 == d_k else rf"\sqrt{{{d_k}}}"
    return [
        rf"Q = {bmatrix(data['q'], inputs)} \quad K = {bmatrix(data['k'], inputs)} \quad V = {bmatrix(data['v'], inputs)}",
        rf"S = \frac{{QK^T}}{{{root}}} = {bmatrix(data['scores'], precision)}",
        rf"A = \mathrm{{softmax}}(S) = {bmatrix(data['weights'], precision)}",
        rf"O = AV = {bmatrix(data['output'], precision)}",
    ]


def size_command(data: StepsData) -> str:
    """The font size that fits the four steps' height on a 4:3 frame: smaller for more tokens (a
    line too wide is also scaled down to the text width, see :func:`beamer`)."""
    rows = max(len(data["q"]), len(data["k"])) + 3 * len(data["q"])  # Q K V, then S, A and O: one row a query
    sizes = ((12, r"\small"), (16, r"\footnotesize"), (20, r"\scriptsize"))
    return next((size for most, size in sizes if rows <= most), r"\tiny")


def beamer(data: StepsData, *, precision: int, overlays: bool = True) -> str:
    """The worked example as a Beamer snippet, in a font size that fits the frame (:func:`size_command`),
    each line shrunk to the text width if it is wider.
    With ``overlays``, each step appears on the overlay after the one before, counting from what
    precedes the block in its frame (``\\only<+->``: after an incremental list or a pause, not
    with it). ``\\only``, not ``\\uncover``: a step not yet shown takes no room, so the first
    overlay is not a frame (or a theme's block box) as tall as all four steps with one line in it.
    Beamer's ``+`` leaves its counter one past the overlay it used, and ``\\pause`` adds one before
    it uses it: the block hands the counter back on its last step, so a pause after it adds no
    empty overlay."""
    lines = [r"\begin{center}" + size_command(data)]
    for equation in equations(data, precision):
        # one unbreakable line, shrunk to the text width when wider (graphicx, which Beamer loads)
        math_ = rf"\resizebox{{\ifdim\width>\linewidth\linewidth\else\width\fi}}{{!}}{{$\displaystyle {equation}$}}"
        lines.append(rf"\only<+->{{{math_}\\[3pt]}}" if overlays else rf"{math_}\\[3pt]")
    if overlays:
        lines.append(r"\addtocounter{beamerpauses}{-1}")
    lines.append(r"\end{center}")
    return "\n".join(lines)


def write(data: StepsData, options: StepsOptions, out):
    """Raw LaTeX for Beamer (one step per overlay) and a LaTeX handout (every step at once); in
    reveal.js display math, one fragment per step; elsewhere (Word, PowerPoint, HTML) every step
    as an equation."""
    import panflute as pf

    if out.fmt == "beamer":
        return pf.RawBlock(beamer(data, precision=options.precision, overlays=options.overlays), format="latex")
    if out.fmt == "latex":  # a handout: every step at once, kept together on one page
        steps = beamer(data, precision=options.precision, overlays=False)
        return pf.RawBlock(f"\\par\\noindent\\begin{{minipage}}{{\\linewidth}}\n{steps}\n\\end{{minipage}}\\par",
                           format="latex")
    steps = [pf.Para(pf.Math(eq, format="DisplayMath")) for eq in equations(data, options.precision)]
    fragments = options.overlays and out.fmt == "revealjs"
    return pf.Div(*[pf.Div(s, classes=["fragment"]) if fragments else s for s in steps],
                  identifier=out.identifier, classes=["attention-steps"])


KIND = Kind("attention-steps", StepsOptions, compute, output="text", write=write, cost=0, examples=EXAMPLES)
