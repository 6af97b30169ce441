"""Arrays → LaTeX: numbers and matrices as a worked example typesets them.

Plain string building, no heavy imports: text kinds run it on every build, cached or not.
"""

from __future__ import annotations


def number(x: float | None, precision: int) -> str:
    """``x`` rounded to ``precision`` decimals, without a negative zero; a minus sign is math's.
    ``None`` is a masked score, ``-\\infty``."""
    if x is None:
        return r"-\infty"
    text = f"{x:.{precision}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text


def bmatrix(rows, precision: int) -> str:
    """A ``bmatrix`` (amsmath) of the numbers in ``rows`` (a list of lists)."""
    body = r" \\ ".join(" & ".join(number(x, precision) for x in row) for row in rows)
    return r"\begin{bmatrix}" + body + r"\end{bmatrix}"
