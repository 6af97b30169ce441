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
from typing import Any, Literal, Protocol

from filters.blocks.labels import LABELS, LANGUAGES

Output = Literal["figure", "figures", "text"]
Matrix = list[list[float]]  # rows of numbers, as JSON holds a 2-D array


class KindError(Exception):
    """A kind's file is incomplete or inconsistent (a programming error, found at import time)."""


class Out(Protocol):
    """What a kind's ``write`` gets from the filter to put its block on the slide."""

    fmt: str  # pandoc's output format: beamer, latex, revealjs, docx, …
    identifier: str  # the block's #id ("" when it has none)
    classes: list[str]  # the block's classes but its kind's (a language: ["python"])
    lang: str  # the deck's language
    figures: int  # how many pictures the block's entry holds

    def figure(self, n: int = 1, *, height: str | None = None, caption: int | None = None) -> Any:
        """Picture ``n`` (from 1) as a ``panflute.Figure``: the file copied beside the deck's other
        figures, the block's height (or ``height``, a length) and alt text, its caption ``n`` (or
        caption number ``caption``; 0: none)."""

    def markdown(self, text: str) -> list:
        """``text`` read as Markdown, as inlines (``$math$``, ``*emphasis*``)."""


@dataclass(frozen=True)
class Kind:
    """Everything one kind of live block is.

    Attributes:
        name: the code block's class, e.g. ``"attention"`` for ```` ```{.attention} ````.
        options: the frozen dataclass of its options (a subclass of
            :class:`filters.blocks.options.Options`); its docstring starts ``.name``: and its first
            paragraph is the kind's summary in `attnslides options`.
        compute: ``compute(options, device) -> data``: runs the engine on ``device`` (``"cpu"``,
            ``"cuda"``, ``"mps"``, ``"auto"``) and returns JSON-ready data. Imports torch inside, so
            that a build whose figures are all cached never imports it. ``None`` for a kind with ``make``.
        output: ``"figure"``: one picture, drawn by ``draw``; ``"figures"``: any number of
            pictures, made with the data by ``make``; ``"text"``: no picture, only what ``write``
            gives (raw LaTeX, math, text).
        cost: rough compute time relative to the others (1 ≈ a small heatmap); the longest jobs
            start first, so that a long one does not start last and keep the build waiting.
        draw: figure kinds: ``draw(data, options, labels) -> matplotlib.figure.Figure``, where
            ``labels`` maps every word the figure shows (shared ones and this kind's) to the
            deck's language. Imports matplotlib inside.
        make: ``make(options, folder, *, ext, device, lang, home, project) -> data``, for a kind
            whose pictures come out of the computation itself (``.run``): it saves
            ``figure-1.<ext>``, ``figure-2.<ext>`` … in ``folder`` (in the deck's style) and returns
            the data; ``home``: the deck's folder, ``project``: the project's (or ``None``).
        write: ``write(data, options, out) -> panflute.Block | list[panflute.Block]``: the
            block's elements on the slide; ``out`` is an :class:`Out`. Needed by text kinds and
            ``"figures"`` kinds; a figure kind without one shows ``out.figure(1)``. Imports
            panflute inside.
        captions: figure kinds: the default caption of a block that gives none, per language: a
            :meth:`str.format` template filled with the block's options (``{sentence}``).
            Captions never reach a picture, so the cache key leaves them out
            (:data:`filters.cache.sources.TEXT_FOR_PEOPLE`).
        labels: words this kind's figure shows besides the shared ones of :mod:`filters.blocks.labels`,
            per language, with the same keys in every language.
        examples: per language, the Markdown of a frame (``# Title`` and a block of this kind):
            the kind's frame in the starter deck of ``attnslides new``, which the tests build. Text
            for people: left out of the cache key too.
        across_devices: what must agree when the same block is computed on the CPU and on a GPU
            (``make gpu-check``): ``across_devices(data) -> {name: number or array}``. ``None``:
            every number and array of the data. A kind whose training differs in the last bits
            between devices names what the slide shows instead.
        executes: it runs code written in the deck (``.run``): in a process of its own, always;
            ``--no-exec`` skips it.
        write_unrun: kinds that execute: ``write_unrun(options, out) -> list[panflute.Block]``, what
            the slide shows when the build must not run the block's code and nothing is cached.
        timeout_option: the option that sets the block's time limit in seconds (``"timeout"``);
            ``None``: the limit every figure has (:data:`filters.workers.limits.FIGURE_TIME_LIMIT_S`).
        memory_option: the option that sets the memory the block may take, in gigabytes
            (``"memory"``); ``None``: what every figure may take
            (:data:`filters.workers.limits.FIGURE_MEMORY_GB`).
        files: data files the kind reads, relative to its own file (a corpus it trains on): part of
            its cache key.
        module: the module that defines the kind (by default its options' module; the cache key
            starts there).
        requires: ``requires() -> str | None``: why the kind cannot run here (a package it needs is
            not installed, and the command that installs it), or ``None`` when it can. Cheap (no
            heavy imports): the starter deck leaves out a kind that cannot run, and its tests skip.
    """

    name: str
    options: type
    compute: Callable[[Any, str], Mapping[str, Any]] | None
    output: Output
    cost: float
    draw: Callable[..., Any] | None = None
    make: Callable[..., Mapping[str, Any]] | None = None
    write: Callable[..., Any] | None = None
    captions: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    examples: Mapping[str, str] = field(default_factory=dict)
    across_devices: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None
    executes: bool = False
    write_unrun: Callable[..., Any] | None = None
    timeout_option: str | None = None
    memory_option: str | None = None
    files: tuple[str, ...] = ()
    module: str = ""
    requires: Callable[[], str | None] | None = None

    def __post_init__(self):
        if not self.module and isinstance(self.options, type):
            object.__setattr__(self, "module", self.options.__module__)

    @property
    def summary(self) -> str:
        """The first paragraph of the options' docstring, after its ``.kind:`` prefix, on one line."""
        doc = vars(self.options).get("__doc__") or ""
        first = " ".join(doc.strip().split("\n\n")[0].split())
        return first.split(":", 1)[1].strip() if first.startswith(f"``.{self.name}``:") else ""

    def problems(self) -> list[str]:
        """Every piece this kind lacks or gets wrong, one sentence each (empty when complete)."""
        return [*self._options_problems(), *self._output_problems(), *self._text_problems()]

    def _options_problems(self) -> list[str]:
        from filters.blocks.options import Options
        from filters.blocks.settings import Settings

        if not isinstance(self.options, type) or not issubclass(self.options, Options) \
                or not self.options.__dataclass_params__.frozen:
            return ["options must be a frozen dataclass that inherits filters.blocks.options.Options"]
        found = []
        if not self.summary:
            found.append(f"options need a docstring starting ``.{self.name}``: and saying what the block shows")
        fields = dataclasses.fields(self.options)
        bare = [f.name for f in fields if not {"parse", "help"} <= set(f.metadata)]
        if bare:
            found.append(f"options {', '.join(bare)} must be declared with filters.blocks.options.option(...)")
        clash = {f.name for f in fields} | {f.name for f in dataclasses.fields(Settings)}
        if self.name.replace("-", "_") in clash:
            found.append(f"the name '{self.name}' is also an option or setting: 'attnslides: {self.name}:' "
                         "metadata could not tell them apart")
        found += [f"option {f.name} follows the deck's language: its default must be None and by_language must "
                  f"give its value in {', '.join(LANGUAGES)}" for f in fields if f.metadata.get("by_language") is not None
                  and (f.default is not None or set(f.metadata["by_language"]) != set(LANGUAGES))]
        if self.timeout_option and self.timeout_option not in {f.name for f in fields}:
            found.append(f"timeout_option names '{self.timeout_option}', which is no option of the kind")
        if self.memory_option and self.memory_option not in {f.name for f in fields}:
            found.append(f"memory_option names '{self.memory_option}', which is no option of the kind")
        return found

    def _output_problems(self) -> list[str]:
        found = []
        if self.output not in ("figure", "figures", "text"):
            found.append(f"output must be 'figure', 'figures' or 'text', not {self.output!r}")
        if not isinstance(self.cost, (int, float)) or self.cost < 0:
            found.append(f"cost must be a number >= 0, not {self.cost!r}")
        if self.output == "figures" and not callable(self.make):
            found.append("a 'figures' kind needs make(options, folder, *, ext, device, lang, home, project) -> data")
        elif self.output != "figures" and not callable(self.compute):
            found.append("compute must be a function compute(options, device) -> data")
        if self.output == "figure" and not callable(self.draw):
            found.append("a figure kind needs draw(data, options, labels) -> Figure")
        if self.output != "figure" and not callable(self.write):
            found.append(f"a '{self.output}' kind needs write(data, options, out) -> panflute.Block")
        if self.executes and not callable(self.write_unrun):
            found.append("a kind that executes the deck's code needs write_unrun(options, out) -> blocks, for a "
                         "build that must not run it")
        return found

    def _text_problems(self) -> list[str]:
        """Captions, examples and figure words, in every language."""
        found = []
        if self.output == "figure":
            missing = [lang for lang in LANGUAGES if not self.captions.get(lang)]
            if missing:
                found.append(f"a figure kind needs a default caption in every language; missing: {', '.join(missing)}")
            found += self._caption_problems()
        elif self.captions:
            found.append(f"a '{self.output}' kind has no default caption, so it must not declare captions")
        missing = [lang for lang in LANGUAGES if lang not in self.examples]
        if missing:
            found.append(f"an example block for the starter deck is missing in: {', '.join(missing)}")
        if self.labels:
            keys = {lang: set(self.labels.get(lang, ())) for lang in LANGUAGES}
            reference = set().union(*keys.values())
            for lang, have in keys.items():
                if have != reference:
                    found.append(f"labels in '{lang}' lack {', '.join(sorted(reference - have))}")
            shadowed = sorted(reference & set(LABELS[LANGUAGES[0]]))
            if shadowed:
                found.append(f"labels {', '.join(shadowed)} are shared ones (filters.blocks.labels); use those")
        return found

    def _caption_problems(self) -> list[str]:
        """A caption template that names something its options do not have fails every block."""
        try:
            defaults = self.options().caption_fields()
        except TypeError:
            return ["every option needs a default"]
        found = []
        for lang, template in self.captions.items():
            try:
                template.format(**defaults)
            except (KeyError, IndexError, ValueError) as exc:
                found.append(f"the caption in '{lang}' cannot be filled from the options: {type(exc).__name__}: {exc}")
        return found

    def unavailable(self) -> str | None:
        """Why this kind cannot run here (see ``requires``), or ``None``."""
        return self.requires() if self.requires else None

    def labels_for(self, lang: str) -> dict[str, str]:
        """The words of this kind's figure in ``lang``: the shared ones and its own."""
        return {**LABELS[lang], **self.labels.get(lang, {})}

    def default_caption(self, options, lang: str) -> str:
        """The caption of a block that gives none, in ``lang``, filled from its options."""
        return self.captions[lang].format(**options.caption_fields())


def as_list(tensor) -> list:
    """A tensor as nested lists of Python floats (float64, on the CPU): JSON-ready."""
    return tensor.detach().cpu().double().tolist()
