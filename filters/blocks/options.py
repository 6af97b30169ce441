"""Options of live blocks: how an option is declared, the options several kinds share, and parsing a block.

Every live block is a fenced code block whose first class names its kind::

    ```{.attention sentence="el gato se sentó en la alfombra" seed=3 caption="Pesos de atención"}
    ```

Options come, first match wins, from

1. the block's attributes (``key=value``; ``d_model`` and ``d-model`` are the same key);
2. the block's body: a YAML mapping, where Quarto-style ``#| key: value`` lines are read too
   (a kind with a *body key* also takes a plain-text body, e.g. the sentence of ``.attention``);
3. the document's metadata, under ``attnslides:``, either per kind (``attnslides: {attention: {seed: 2}}``)
   or for every kind that has the key (``attnslides: {precision: 3}``);
4. the default written in the kind's options.

A kind's options are one frozen dataclass (in its file under ``filters/kinds/``); each field is
declared with :func:`option`, which keeps its help text and its parser beside its default, so the
list of keys, their types and their help cannot drift apart. Options that several kinds take are
declared once and inherited: :class:`FigureOptions` and :class:`HeatmapOptions` here, the sentence
kinds' ``SentenceOptions`` in :mod:`filters.kinds._sentence`. Anything not declared is an error that
suggests the closest valid key. Nothing downstream of :func:`parse_options` reads raw strings. The
value parsers are in :mod:`filters.blocks.parsers`; document-wide settings in
:mod:`filters.blocks.settings`.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml

from filters.blocks.parsers import (
    as_bool,
    as_choice,
    as_int,
    as_size,
    as_str,
    check_escapes,
    load_yaml,
    optional,
)
from filters.errors import BlockError


def option(default: Any, parse: Callable[[Any], Any], *, help: str, figure: bool = True,
           key: Callable[[Any], Any] | None = None, by_language: Mapping[str, Any] | None = None):
    """One option of a kind: a dataclass field with its default, its parser and its help.

    ``figure=False``: it changes the slide, not the picture or data (caption, alt text, size on
    the slide), so it is left out of the cache key. ``key``: what of the value the cache key sees
    (a ``.run`` block's code without its ``#|`` lines, which are options of their own). The help is
    text for people: the cache key leaves it out too, as :data:`filters.cache.sources.TEXT_FOR_PEOPLE`
    says. ``by_language``: the value in each language (``{"es": "es", "en": "en"}``) of an option whose
    default (``None``) follows the deck's language: :meth:`Options.in_language` fills it in.
    """
    return field(default=default, metadata={"help": help, "parse": parse, "figure": figure, "key": key,
                                            "by_language": by_language})


# Colormaps a projector shows well (perceptually uniform or sequential). Listed here, not looked up
# in matplotlib, so that parsing a deck never imports matplotlib.
COLORMAPS = ("viridis", "magma", "inferno", "plasma", "cividis", "Blues", "Greens", "Greys", "Oranges", "Purples", "YlOrRd")
# Diverging ones, readable by colour-blind viewers, for values on both sides of 0 (in [-1, 1]).
DIVERGING = ("RdBu_r", "PuOr_r", "BrBG", "coolwarm")


# --------------------------------------------------------------------------------------------
# Options shared by several kinds. A kind's options class inherits the groups it takes.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """Base of every kind's options. ``body_key``: the option a plain-text body sets, if any."""

    body_key: ClassVar[str | None] = None
    body_is_code: ClassVar[bool] = False  # the whole body is the body key's text, never options

    def validate(self) -> None:
        """Checks across several options; raises :class:`BlockError` naming the key.
        Subclasses call ``super().validate()`` first."""

    def figure_captions(self) -> list[str]:
        """The captions the block gives for its pictures, in order (none: the kind's default)."""
        return []

    def in_language(self, lang: str):
        """These options with each one left to the deck's language (an option declared with
        ``by_language`` and not given: ``None``) set to its value in ``lang`` (``"es"``, ``"en"``).
        Returns ``self`` when there is none."""
        chosen = {f.name: f.metadata["by_language"][lang] for f in dataclasses.fields(self)
                  if f.metadata.get("by_language") and getattr(self, f.name) is None}
        return dataclasses.replace(self, **chosen) if chosen else self

    def caption_fields(self) -> dict[str, Any]:
        """What a default caption template may name (``{sentence}``): the options, lists written
        out as text ("1, 2, 8"), shortened where a caption needs it."""
        return {name: ", ".join(map(str, value)) if isinstance(value, tuple) else value
                for name, value in vars(self).items()}


@dataclass(frozen=True)
class FigureOptions(Options):
    """Options of every figure kind: how its picture sits on the slide."""

    caption: str = option("", as_str, figure=False, help="caption under the figure (Markdown, $math$ allowed)")
    alt: str = option("", as_str, figure=False, help="alternative text for screen readers")
    # The height changes the picture too: its fonts are sized for what the slide will show.
    height: str = option("66%", as_size, help="height on the slide: 66% of the text height (the default leaves room "
                                              "for a title, a line of text and a two-line caption), or 5cm")

    def figure_captions(self) -> list[str]:
        return [self.caption] if self.caption else []


@dataclass(frozen=True)
class HeatmapOptions(Options):
    """How an attention heatmap is drawn (:func:`filters.render.attention_heatmap`)."""

    precision: int = option(2, as_int(0, 4), help="decimals of the weight printed in each cell")
    annotate: bool | None = option(None, optional(as_bool),
                                   help="print the weight in each cell: true, false, or auto (only where it is "
                                        "readable on the slide, 6 pt or more)")
    cmap: str = option("viridis", as_choice(*COLORMAPS), help="colormap of the weights")


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def keys_of(cls: type) -> dict[str, dataclasses.Field]:
    """The options of an options class, by name."""
    return {f.name: f for f in dataclasses.fields(cls)}


def normalise_key(key: str) -> str:
    return str(key).strip().replace("-", "_")


def suggest(key: str, valid) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(sorted(valid))}"


def convert(cls: type, raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Check every key of ``raw`` against ``cls`` and parse its value."""
    fields = keys_of(cls)
    values = {}
    for key, value in raw.items():
        name = normalise_key(key)
        if name not in fields:
            raise BlockError(f"unknown option in {source}{suggest(name, fields)}", key=str(key))
        if name in values:  # d-model=8 d_model=32: which one was meant?
            raise BlockError(f"given twice in {source} (as {name} and {name.replace('_', '-')}); keep one", key=name)
        try:
            if not (getattr(cls, "body_is_code", False) and name == cls.body_key):  # code's tabs are its own
                check_escapes(value)
            values[name] = fields[name].metadata["parse"](value)
        except ValueError as exc:
            raise BlockError(f"bad value in {source}: {exc}", key=name) from None
    return values


_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")  # what an option's name looks like
_OPTION_LINE = re.compile(r"^\s*#\|")  # Quarto's "#| key: value" line


def is_option_line(line: str) -> bool:
    """Whether ``line`` of a block's body is a ``#| key: value`` option line (Quarto's style)."""
    return bool(_OPTION_LINE.match(line))


def without_option_lines(text: str, *, keep_places: bool = False) -> str:
    """A block's body without its ``#|`` option lines: dropped (the code a slide shows, without
    blank lines at its ends), or with ``keep_places`` each left as a bare ``#|``, so that every
    other line keeps its number (the code as the cache key sees it: a caption edited in a ``#|``
    line must not run the code again)."""
    if keep_places:
        return "\n".join("#|" if is_option_line(line) else line for line in text.splitlines())
    return "\n".join(line for line in text.splitlines() if not is_option_line(line)).strip("\n")


def read_body(text: str, cls: type) -> dict[str, Any]:
    """The options written in a block's body.

    ``#| key: value`` lines (Quarto's style) are options wherever they stand. The rest of the body
    is a YAML mapping of options or, for a kind with a body key (``.attention``'s sentence), text:
    a body that reads as a mapping whose keys are not names (``¿Qué tal? Esto es: …``) is text.
    For a kind whose body is code (``.run``), the whole body, ``#|`` lines included, is the code.

    Raises:
        BlockError: if the body is neither of these; a YAML error says where it is.
    """
    text = text.lstrip("\ufeff")  # a byte-order mark pasted from another editor is no text
    lines = text.splitlines()
    numbers = [n for n, line in enumerate(lines, start=1) if is_option_line(line)]  # of the body
    marked = [re.sub(r"^\s*#\|\s?", "", lines[n - 1]) for n in numbers]
    rest = without_option_lines(text).strip()
    options = _as_written(_yaml_mapping("\n".join(marked), "the block's #| lines", numbers) if marked else {},
                          marked, cls)
    if cls.body_is_code:  # code keeps every line, #| ones too, so that its line numbers are the deck's
        return {**options, cls.body_key: text} if rest else options
    if not rest:
        return options
    try:
        body = load_yaml(rest)
    except ValueError as exc:
        raise BlockError(f"the block's body: {exc}") from None
    except yaml.YAMLError as exc:
        if cls.body_key:
            body = rest
        else:
            raise BlockError(f"the block's body must be YAML options (key: value): {_yaml_problem(exc)}") from None
    if isinstance(body, dict) and cls.body_key and not all(_KEY.fullmatch(str(k)) for k in body):
        body = rest  # "¿Qué tal? Esto es: una frase" reads as YAML, but it is the text, not options
    if isinstance(body, dict):
        body = _as_written(body, rest.splitlines(), cls)
        twice = sorted(set(map(normalise_key, body)) & set(map(normalise_key, options)))
        if twice:
            raise BlockError("given both in a #| line and in the block's body; keep one", key=twice[0])
        return {**options, **body}
    if cls.body_key and isinstance(body, (str, int, float)):
        return {**options, cls.body_key: rest}
    raise BlockError(
        "the block's body must be YAML options (key: value)"
        + (f" or the {cls.body_key}" if cls.body_key else "")
    )


_TEXT_LINE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_-]*)\s*:\s+(.*?)\s*")


def _as_written(values: dict[str, Any], lines: list[str], cls: type) -> dict[str, Any]:
    """``values`` read from YAML ``lines``, with every text option (a caption, alt text) as its line
    writes it: YAML would make ``No`` false, ``12:30`` the number 750 and ``#1`` a comment. A quoted
    or block value (``"…"``, ``|``) stays as YAML read it."""
    texts = {name for name, f in keys_of(cls).items() if f.metadata["parse"] is as_str}
    values = dict(values)
    for line in lines:
        match = _TEXT_LINE.fullmatch(line)
        if match and normalise_key(match[1]) in texts and match[1] in values and match[2][:1] not in ("\"", "'", "|", ">"):
            values[match[1]] = match[2]
    return values


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    return f"{getattr(exc, 'problem', None) or exc}{where}"


def _yaml_mapping(text: str, source: str, lines: list[int] | None = None) -> dict[str, Any]:
    """``text`` read as a YAML mapping; ``lines``: the body line of each of its lines, for errors."""
    try:
        value = load_yaml(text)
    except ValueError as exc:
        raise BlockError(f"could not read {source}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = lines[min(mark.line, len(lines) - 1)] if mark and lines else None
        problem = getattr(exc, "problem", None) or exc
        raise BlockError(f"could not read {source} as YAML: {problem}", line=line) from None
    if not isinstance(value, dict):
        raise BlockError(f"{source} must be 'key: value' options")
    return value


def parse_options(cls: type, attributes: Mapping[str, str], body: str, defaults: Mapping[str, Any] | None = None):
    """Parse one block into an instance of its options class ``cls``.

    Args:
        cls: the kind's options dataclass (``Kind.options``).
        attributes: the block's ``key=value`` attributes (strings).
        body: the block's text.
        defaults: raw per-kind defaults from :func:`read_metadata`.

    Returns:
        An instance of ``cls``, validated.

    Raises:
        BlockError: for an unknown key (with the closest valid one), a bad value, a key given
            both as attribute and in the body, or a failed cross-option check.
    """
    from_attributes = convert(cls, attributes, "the block's attributes")
    from_body = convert(cls, read_body(body, cls), "the block's body")
    twice = sorted(set(from_attributes) & set(from_body))
    if twice:
        raise BlockError("given both as an attribute and in the block's body; keep one", key=twice[0])
    from_meta = convert(cls, defaults or {}, "metadata 'attnslides:'")
    options = cls(**{**from_meta, **from_body, **from_attributes})
    options.validate()
    return options


def figure_options(options) -> dict[str, Any]:
    """The options that change the picture or data (caption, alt, size excluded), each as the
    cache key sees it (a field's ``key`` function, when it has one)."""
    return {
        f.name: f.metadata["key"](getattr(options, f.name)) if f.metadata.get("key") else getattr(options, f.name)
        for f in dataclasses.fields(options)
        if f.metadata.get("figure", True)
    }


