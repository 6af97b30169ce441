"""``.run``: the lecturer's own Python, run with the engine while the deck builds (see
:mod:`filters.figures.sandbox`).

````markdown
```{.python .run #fig-mi-experimento caption="Lo que mide mi experimento"}
x = torch.randn(5, 8)
attention = engine.attention.SelfAttention(8, seed=0)
_, weights = attention(x)
slide.heatmap(weights, list("abcde"))
```
````
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, TypedDict

from filters.blocks.kind import Kind
from filters.blocks.options import FigureOptions, option, without_option_lines
from filters.blocks.parsers import as_bool, as_gigabytes, as_int, as_positive_float, as_seed, optional, str_list
from filters.errors import BlockError

# This kind's frame in the starter deck of `attnslides new`, in each language.
EXAMPLES = {
    "es": "# Tu propio experimento\n\n```{.python .run #experimento echo=true height=45% caption=\"Pesos de una cabeza "
          "de atención sobre cinco vectores al azar.\"}\nx = torch.randn(5, 8)\nhead = "
          "engine.attention.SelfAttention(8, seed=0)\n_, weights = head(x)\nslide.heatmap(weights, list(\"abcde\"))\n```",
    "en": "# Your own experiment\n\n```{.python .run #experiment echo=true height=45% caption=\"Weights of one attention head "
          "over five random vectors.\"}\nx = torch.randn(5, 8)\nhead = engine.attention.SelfAttention(8, seed=0)\n"
          "_, weights = head(x)\nslide.heatmap(weights, list(\"abcde\"))\n```",
}


# What the slide says of a block whose code was not run and has no saved result.
NOT_RUN = {
    "es": "(Código no ejecutado: compilado sin ejecutar código (--no-exec, o execute: false) y sin resultado guardado.)",
    "en": "(Code not run: built without running code (--no-exec, or execute: false) and no saved result.)",
}


def _code_as_keyed(code: str) -> str:
    """The code as the cache key sees it: its ``#|`` lines emptied (each is an option, in the key on
    its own when it changes the result), every other line where it was."""
    return without_option_lines(code, keep_places=True)


@dataclass(frozen=True)
class RunOptions(FigureOptions):
    """``.run``: your own Python, run at build time with ``engine``, ``torch``, ``np``, ``plt`` and
    ``slide`` ready; its figures, matrices, texts and printed output go on the slide.

    Write it as ```` ```{.python .run} ````. Options are attributes or Quarto's ``#|`` lines."""

    body_key: ClassVar[str | None] = "code"
    body_is_code: ClassVar[bool] = True
    code: str = option("", str, help="the Python code (the block's body)", key=_code_as_keyed)
    fig_cap: tuple[str, ...] = option((), str_list, figure=False,
                                      help="captions of the figures, in order, e.g. [\"first\", \"second\"]")
    echo: bool = option(False, as_bool, figure=False, help="show the code, highlighted, before what it makes")
    layout_ncol: int | None = option(None, optional(as_int(1, 4)),
                                     help="figures side by side in a row, as Quarto's layout-ncol (auto: as many as "
                                          "make them largest); the rows share the height")
    seed: int = option(0, as_seed, help="seed of torch, numpy and random before the code runs")
    timeout: float = option(120.0, as_positive_float, figure=False,
                            help="seconds the code may run before it is stopped")
    memory: float = option(4.0, as_gigabytes, figure=False,
                           help="memory the code may take, beyond the worker's own (about 0.8 GB): 4GB, 512MB …")

    def validate(self) -> None:
        super().validate()
        if not self.code.strip():
            raise BlockError("the block has no code: write Python in its body", key="code")
        if self.caption and self.fig_cap:
            raise BlockError("give caption (one figure) or fig-cap (a list, one per figure), not both", key="fig_cap")
        if self.timeout > 3600:
            raise BlockError(f"at most 3600 seconds, got {self.timeout:g}", key="timeout")
        if self.memory > 1024:
            raise BlockError(f"at most 1024 GB, got {self.memory:g} GB", key="memory")

    def figure_captions(self) -> list[str]:
        return list(self.fig_cap) or super().figure_captions()

    @property
    def listing(self) -> str:
        """The code as shown with ``echo``: without its ``#|`` option lines."""
        return without_option_lines(self.code)


class RunData(TypedDict):
    """What a ``.run`` block leaves (``<id>.json``)."""

    seed: int
    device: str
    figures: int  # how many figures it drew: <id>-1.pdf, <id>-2.pdf, …
    ncol: int  # figures side by side in a row (filters.figures.render.arrange)
    heights: list[str]  # each figure's height on the slide, a length: together they share the block's
    outputs: list[dict[str, Any]]  # in order: {"figure": n}, {"math": latex}, {"text": markdown}, {"printed": text}
    data: dict[str, Any]  # what the code gave slide.data(...)


def make(options: RunOptions, folder, *, ext: str, device: str, lang: str, home=None, project=None,
         page=None) -> RunData:
    """Run the block's code in the deck's folder ``home`` (:func:`filters.figures.sandbox.execute`);
    its figures go to ``folder``, with the files of ``project`` it read, drawn for ``page``."""
    from filters.figures.sandbox import execute

    return execute(options.code, seed=options.seed, device=device, lang=lang, height=options.height, folder=folder,
                   ext=ext, home=home, project=project, page=page, ncol=options.layout_ncol)


def write(data: RunData, options: RunOptions, out) -> list:
    """The code (with ``echo``), then what it made, in order.

    Raises:
        BlockError: when ``fig-cap`` gives more captions than the code drew figures.
    """
    import panflute as pf

    if len(options.fig_cap) > data["figures"]:
        raise BlockError(f"fig-cap gives {len(options.fig_cap)} captions, but the code drew {data['figures']} "
                         "figure(s)", key="fig_cap")
    blocks = [pf.CodeBlock(options.listing, classes=["python"])] if options.echo else []
    heights, ncol = data.get("heights") or [], data.get("ncol", 1)
    row, after_row = [], []  # figures that stand side by side, and what comes between them (after the row)
    for piece in data["outputs"]:
        if "figure" in piece:
            n = piece["figure"]
            # one caption= for several figures: under the last of them, the group's
            shared = 1 if n == data["figures"] else 0
            figure = out.figure(n, height=heights[n - 1] if n <= len(heights) else None,
                                caption=shared if options.caption and data["figures"] > 1 else None)
            row.append(figure) if ncol > 1 else blocks.append(figure)
            if len(row) == ncol or n == data["figures"]:
                blocks += ([side_by_side(row)] if row else []) + after_row
                row, after_row = [], []
        else:
            (after_row if row else blocks).append(_piece(piece, out))
    return blocks


def _piece(piece: dict, out) -> Any:
    """What a block's code put on its slide besides a figure: math, text or its printed output."""
    import panflute as pf

    if "math" in piece:
        return pf.Para(pf.Math(piece["math"], format="DisplayMath"))
    if "text" in piece:
        return pf.Para(*out.markdown(piece["text"]))
    return pf.CodeBlock(piece["printed"], classes=["output"])


def side_by_side(figures: list) -> Any:
    """Figures in a row: pandoc's columns (Beamer's ``columns``, reveal.js's and PowerPoint's
    columns), each :func:`filters.blocks.page.share_in_row` of the width, as the figures were
    drawn for."""
    import panflute as pf

    # geometry only: writing a cached block's slide imports no matplotlib
    from filters.blocks.page import share_in_row

    width = f"{share_in_row(len(figures)) * 100:.0f}%"
    return pf.Div(*(pf.Div(figure, classes=["column"], attributes={"width": width}) for figure in figures),
                  classes=["columns"])


def write_unrun(options: RunOptions, out) -> list:
    """What the slide shows of a block the build must not run (``--no-exec``) and has no result of:
    its code, and a note in the deck's language that it was not run."""
    import panflute as pf

    words = [w for word in NOT_RUN[out.lang].split() for w in (pf.Str(word), pf.Space())][:-1]
    return [pf.CodeBlock(options.listing, classes=out.classes[:1]), pf.Para(pf.Emph(*words))]


def across_devices(data: RunData) -> dict[str, Any]:
    """What must agree on the CPU and a GPU: the numbers the block gave ``slide.data``."""
    return {f"data.{name}": value for name, value in data["data"].items()
            if isinstance(value, (int, float, list)) and not isinstance(value, bool)}


KIND = Kind("run", RunOptions, None, output="figures", make=make, write=write, cost=5, executes=True,
            write_unrun=write_unrun, timeout_option="timeout", memory_option="memory", across_devices=across_devices,
            examples=EXAMPLES)
