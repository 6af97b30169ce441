"""Arrays → LaTeX: the worked example of ``.attention-steps``, one step per Beamer overlay.

Plain string building, no heavy imports: it runs on every build, cached or not.
"""

from __future__ import annotations

import math


def number(x: float, precision: int) -> str:
    """``x`` rounded to ``precision`` decimals, without a negative zero; a minus sign is math's."""
    text = f"{x:.{precision}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text


def bmatrix(rows, precision: int) -> str:
    """A ``bmatrix`` (amsmath) of the numbers in ``rows`` (a list of lists)."""
    body = r" \\ ".join(" & ".join(number(x, precision) for x in row) for row in rows)
    return r"\begin{bmatrix}" + body + r"\end{bmatrix}"


def _is_integral(rows) -> bool:
    return all(float(x).is_integer() for row in rows for x in row)


def steps_equations(data: dict, precision: int) -> list[str]:
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


def steps_beamer(data: dict, *, precision: int, overlays: bool = True) -> str:
    """The worked example as a Beamer snippet: step ``n`` appears on overlay ``n`` (``\\uncover``
    keeps the space, so nothing moves as the steps appear)."""
    lines = [r"\begin{center}\small"]
    for n, equation in enumerate(steps_equations(data, precision), start=1):
        math_ = rf"$\displaystyle {equation}$"
        lines.append(rf"\uncover<{n}->{{{math_}}}\\[3pt]" if overlays else rf"{math_}\\[3pt]")
    lines.append(r"\end{center}")
    return "\n".join(lines)
