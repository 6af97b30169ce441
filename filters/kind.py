"""What a kind of live block is: one record, :class:`Kind` (pandoc-plot's ``Renderer`` record, for figures).

A kind is one file in ``filters/kinds/``, ending with ``KIND = Kind(...)``: its options (a frozen
dataclass), its ``compute`` (options → the numbers, with the engine), its output (a picture drawn by
``draw``, or Pandoc text written by ``write``), its default captions and figure words in every
language, and its relative cost. The rest of the filter reads kinds only through this record: no
code outside a kind's file names it.

The data a kind computes is a JSON-ready mapping (a ``TypedDict`` in the kind's file): it is
written beside the figure for students, read back by ``draw``/``write``, and compared by the
tests. Nothing here imports torch, matplotlib or panflute.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from filters.labels import LABELS, LANGUAGES

Output = Literal["figure", "text"]
Matrix = list[list[float]]  # rows of numbers, as JSON holds a 2-D array


class KindError(Exception):
    """A kind's file is incomplete or inconsistent (a programming error, found at import time)."""


@dataclass(frozen=True)
class Kind:
    """Everything one kind of live block is.

    Attributes:
        name: the code block's class, e.g. ``"attention"`` for ```` ```{.attention} ````.
        options: the frozen dataclass of its options (a subclass of
            :class:`filters.options.Options`); its docstring starts ``.name``: and its first
            paragraph is the kind's summary in `attnslides options`.
        compute: ``compute(options, device) -> data``: runs the engine on ``device`` (``"cpu"``,
            ``"cuda"``, ``"mps"``, ``"auto"``) and returns JSON-ready data. Imports torch inside, so
            that a build whose figures are all cached never imports it.
        output: ``"figure"`` (a picture drawn by ``draw``) or ``"text"`` (Pandoc elements from ``write``).
        cost: rough compute time relative to the others (1 ≈ a small heatmap); the longest jobs
            start first, so that a long one does not start last and keep the build waiting.
        draw: figure kinds: ``draw(data, options, labels) -> matplotlib.figure.Figure``, where
            ``labels`` maps every word the figure shows (shared ones and this kind's) to the
            deck's language. Imports matplotlib inside.
        write: text kinds: ``write(data, options, *, fmt, identifier) -> panflute.Block`` for
            pandoc's output format ``fmt``. Imports panflute inside.
        captions: figure kinds: the default caption of a block that gives none, per language: a
            :meth:`str.format` template filled with the block's options (``{sentence}``).
            Captions never reach a picture, so the cache key leaves them out.
        labels: words this kind's figure shows besides the shared ones of :mod:`filters.labels`,
            per language, with the same keys in every language.
        across_devices: what must agree when the same block is computed on the CPU and on a GPU
            (``make gpu-check``): ``across_devices(data) -> {name: number or array}``. ``None``:
            every number and array of the data. A kind whose training differs in the last bits
            between devices names what the slide shows instead.
        module: the module that defines the kind (set by the registry; the cache key starts there).
    """

    name: str
    options: type
    compute: Callable[[Any, str], Mapping[str, Any]]
    output: Output
    cost: float
    draw: Callable[..., Any] | None = None
    write: Callable[..., Any] | None = None
    captions: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    across_devices: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None
    module: str = ""

    @property
    def summary(self) -> str:
        """The first paragraph of the options' docstring, after its ``.kind:`` prefix, on one line."""
        doc = vars(self.options).get("__doc__") or ""
        first = " ".join(doc.strip().split("\n\n")[0].split())
        return first.split(":", 1)[1].strip() if first.startswith(f"``.{self.name}``:") else ""

    def problems(self) -> list[str]:
        """Every piece this kind lacks or gets wrong, one sentence each (empty when complete)."""
        found = []
        if not dataclasses.is_dataclass(self.options) or not self.options.__dataclass_params__.frozen:
            found.append("options must be a frozen dataclass")
        elif not self.summary:
            found.append(f"options need a docstring starting ``.{self.name}``: and saying what the block shows")
        if not callable(self.compute):
            found.append("compute must be a function compute(options, device) -> data")
        if self.output not in ("figure", "text"):
            found.append(f"output must be 'figure' or 'text', not {self.output!r}")
        if not isinstance(self.cost, (int, float)) or self.cost < 0:
            found.append(f"cost must be a number >= 0, not {self.cost!r}")
        if self.output == "figure":
            if not callable(self.draw):
                found.append("a figure kind needs draw(data, options, labels) -> Figure")
            missing = [lang for lang in LANGUAGES if not self.captions.get(lang)]
            if missing:
                found.append(f"a figure kind needs a default caption in every language; missing: {', '.join(missing)}")
            found += self._caption_problems()
        if self.output == "text":
            if not callable(self.write):
                found.append("a text kind needs write(data, options, *, fmt, identifier) -> panflute.Block")
            if self.captions:
                found.append("a text kind shows no caption, so it must not declare captions")
        if self.labels:
            keys = {lang: set(self.labels.get(lang, ())) for lang in LANGUAGES}
            reference = set().union(*keys.values())
            for lang, have in keys.items():
                if have != reference:
                    found.append(f"labels in '{lang}' lack {', '.join(sorted(reference - have))}")
            shadowed = sorted(reference & set(LABELS[LANGUAGES[0]]))
            if shadowed:
                found.append(f"labels {', '.join(shadowed)} are shared ones (filters.labels); use those")
        return found

    def _caption_problems(self) -> list[str]:
        """A caption template that names something its options do not have fails every block."""
        try:
            defaults = vars(self.options())
        except TypeError:
            return ["every option needs a default"]
        found = []
        for lang, template in self.captions.items():
            try:
                template.format(**defaults)
            except (KeyError, IndexError, ValueError) as exc:
                found.append(f"the caption in '{lang}' cannot be filled from the options: {type(exc).__name__}: {exc}")
        return found

    def labels_for(self, lang: str) -> dict[str, str]:
        """The words of this kind's figure in ``lang``: the shared ones and its own."""
        return {**LABELS[lang], **self.labels.get(lang, {})}

    def default_caption(self, options, lang: str) -> str:
        """The caption of a block that gives none, in ``lang``, filled from its options."""
        return self.captions[lang].format(**vars(options))


def as_list(tensor) -> list:
    """A tensor as nested lists of Python floats (float64, on the CPU): JSON-ready."""
    return tensor.detach().cpu().double().tolist()
