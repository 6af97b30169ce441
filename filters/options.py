"""Options of live blocks: value parsers, the options several kinds share, and parsing a block.

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
suggests the closest valid key. Nothing downstream of :func:`parse_options` reads raw strings.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, ClassVar

import yaml

from engine.device import CHOICES as DEVICES
from filters.errors import BlockError
from filters.labels import LANGUAGES

# --------------------------------------------------------------------------------------------
# Value parsers: raw value (a string from an attribute, or a YAML value) -> typed value.
# Each raises ValueError with a message that says what was expected.
# --------------------------------------------------------------------------------------------

_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters: a message quotes what it got, never pages of it."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"a number of about {int(value.bit_length() * 0.30103):,} digits"  # repr() refuses over 4,300
    text = repr(value) if not isinstance(value, str) or len(value) <= 10**5 else repr(value[:limit + 1])
    return text if len(text) <= limit else f"{text[:limit - 1]}… ({len(text):,} characters)"


FIGURE_TIME_LIMIT_S = 300.0

# The longest text option: a caption or a sentence is a line or two, never pages.
MAX_TEXT_CHARS = 2_000


def as_str(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise ValueError(f"expected text, got {shown(value)}")
    text = str(value).strip() if not isinstance(value, int) or value.bit_length() < 200 else shown(value)
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"{len(text):,} characters is more than a slide shows (at most {MAX_TEXT_CHARS:,})")
    return text


BUILD_FOLDER = "build"  # the project's build folder: everything a build writes goes under it


def as_folder(value: Any) -> str:
    """A folder the build writes into: inside the project's build folder (``build/`` of the folder
    the build runs from), never ``..`` out of it — metadata cannot send files anywhere else, nor
    among the lecturer's own files."""
    text = as_str(value)
    if not text:
        raise ValueError("expected a folder such as build/figures, got an empty value")
    path = PurePosixPath(text.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or text.startswith("~") or len(path.parts) < 2 \
            or path.parts[0] != BUILD_FOLDER:
        raise ValueError(f"the build writes only inside the project's {BUILD_FOLDER}/ folder: give a folder such as "
                         f"{BUILD_FOLDER}/figures, not {shown(value)}")
    return text


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {shown(value)}")


def as_int(lo: int | None = None, hi: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or (isinstance(value, str) and len(value.strip()) > 40) or \
                (isinstance(value, int) and value.bit_length() > 128):
            raise ValueError(f"expected a whole number {_range(lo, hi)}, got {shown(value)}")
        try:
            number = int(str(value).strip())
        except ValueError:
            raise ValueError(f"expected a whole number, got {shown(value)}") from None
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            raise ValueError(f"expected a whole number {_range(lo, hi)}, got {number}")
        return number

    parse.__doc__ = f"whole number {_range(lo, hi)}"
    return parse


def _range(lo: int | None, hi: int | None) -> str:
    return f"in [{lo}, {hi}]" if lo is not None and hi is not None else f">= {lo}" if lo is not None else f"<= {hi}"


# A seed: torch's generators take 64-bit seeds, and kinds seed their parts with seed + 1, + 2 ….
as_seed = as_int(0, 2**63 - 1024)
as_seed.__doc__ = "whole number in [0, 2^63 - 1024] (torch's seeds are 64-bit)"


def as_positive_float(value: Any) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ValueError(f"expected a number, got {shown(value)}") from None
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"expected a finite number > 0, got {shown(value)}")
    return number


def as_choice(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip()
        if text not in choices:
            close = difflib.get_close_matches(text, choices, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ValueError(f"expected one of {', '.join(choices)}, got {shown(text)}{hint}")
        return text

    parse.__doc__ = "one of " + ", ".join(choices)
    return parse


# The most text a block's options may hold: a body of options or a worked example's matrices is a
# few lines; a .run block's code is not read as YAML.
MAX_YAML_CHARS = 20_000


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without aliases: ``&a [*a, *a …]`` lets 700 bytes grow to gigabytes (a "billion laughs")."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not accepted in options",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        """A key written twice is an error (PyYAML would keep the last, without a word)."""
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                twice = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the constructor below says so
                continue
            if twice:
                raise yaml.constructor.ConstructorError(None, None, f"'{key}' is given twice; keep one",
                                                        key_node.start_mark)
        return super().construct_mapping(node, deep)


# YAML 1.1 (PyYAML) reads 1e-3 as text: it wants a dot (1.0e-3). Lecturers write 1e-3, as YAML 1.2,
# JSON and Python do; the number resolvers are copied, not shared with PyYAML's SafeLoader.
_NoAliasLoader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_NoAliasLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"),
                                     list("-+0123456789"))


def load_yaml(text: str) -> Any:
    """``text`` read as YAML (safe types only), within limits on its size and nesting.

    Raises:
        yaml.YAMLError: when it is not YAML, or uses an alias.
        ValueError: when it is too long, nested too deep, or holds a number Python will not read.
    """
    if len(text) > MAX_YAML_CHARS:
        raise ValueError(f"{len(text):,} characters of options is more than a slide needs (at most {MAX_YAML_CHARS:,})")
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 — a SafeLoader, without aliases
    except RecursionError:
        raise ValueError("the value is nested too deep") from None


def _yaml_if_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return load_yaml(value)
        except yaml.YAMLError as exc:
            raise ValueError(f"could not read {shown(value)} as a list: {exc}") from None
    return value


def int_list(lo: int = 0, hi: int | None = None) -> Callable[[Any], tuple[int, ...]]:
    """``[0, 1, 8]`` or ``0,1,8`` → ``(0, 1, 8)``, each number checked against ``[lo, hi]``."""
    one = as_int(lo, hi)

    def parse(value: Any) -> tuple[int, ...]:
        if isinstance(value, str) and not value.strip().startswith("["):
            value = [part for part in re.split(r"[,\s]+", value.strip()) if part]
        value = _yaml_if_text(value)
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"expected a list of whole numbers such as [0, 1, 8], got {shown(value)}")
        return tuple(one(v) for v in value)

    parse.__doc__ = f"list of whole numbers {_range(lo, hi)}"
    return parse


def str_list(value: Any) -> tuple[str, ...]:
    """``"one caption"`` or ``["first", "second"]`` (YAML) → a tuple of texts."""
    if isinstance(value, str) and value.strip().startswith("["):
        value = _yaml_if_text(value)
    if isinstance(value, (list, tuple)):
        if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
            raise ValueError(f"expected a list of texts, got {shown(value)}")
        return tuple(str(v).strip() for v in value)
    return (as_str(value),)


def as_matrix(value: Any) -> tuple[tuple[float, ...], ...]:
    """``[[1, 0], [0, 1]]`` (YAML or JSON text, or a YAML list) → rectangular tuple of float rows."""
    value = _yaml_if_text(value)
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(r, (list, tuple)) for r in value):
        raise ValueError(f"expected a matrix such as [[1, 0], [0, 1]], got {shown(value)}")
    widths = {len(row) for row in value}
    if len(widths) != 1 or 0 in widths:
        lengths = [len(r) for r in value]
        raise ValueError(f"every row of the matrix needs the same, non-zero length; got rows of lengths {lengths}")
    if any(isinstance(x, bool) or not isinstance(x, (int, float)) for row in value for x in row):
        raise ValueError(f"every entry of the matrix must be a number (not true/false or text), got {shown(value)}")
    try:
        rows = tuple(tuple(float(x) for x in row) for row in value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"every entry of the matrix must be a number, got {shown(value)}") from None
    if not all(math.isfinite(x) and abs(x) <= MAX_ENTRY for row in rows for x in row):
        raise ValueError(f"every entry of the matrix must be finite and at most {MAX_ENTRY:g} in size: a worked "
                         "example's scores would overflow to inf and its weights to nan")
    return rows


MAX_ENTRY = 1e4  # scores of entries this size still fit a float: 1e4 × 1e4 × 6 ≪ 3.4e38


# What a figure's sizes become on the slide. Beamer's text height on a 4:3 frame (128 × 96 mm) is
# 260.48 pt; a figure of height "72%" is drawn 0.72 × that high, whatever its own size.
SLIDE_TEXT_HEIGHT_PT = 260.48
_CM = 72.27 / 2.54  # TeX points per centimetre


def slide_points(height: str) -> float:
    """``height`` (``"66%"`` of the text height, or a length such as ``"5cm"``, as :func:`as_size`
    reads it) in TeX points on a Beamer slide."""
    value, unit = float(height.rstrip("%cmin pte")), height.lstrip("0123456789.")
    return {"%": value / 100 * SLIDE_TEXT_HEIGHT_PT, "cm": value * _CM, "mm": value * _CM / 10,
            "in": value * 72.27, "pt": value, "em": value * 11}[unit]


def as_size(value: Any) -> str:
    """A figure size on the slide: a percentage (``70%``) or a LaTeX length (``5cm``)."""
    text = str(value).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(%|cm|mm|in|pt|em)", text)
    if not match:
        raise ValueError(f"expected a size such as 70% or 5cm, got {shown(value)}")
    if match[2] == "%" and not 0 < float(match[1]) <= 100:
        raise ValueError(f"a percentage of the frame's text height lies in (0, 100], got {text}")
    if match[2] != "%" and not 0 < slide_points(text) <= 2 * SLIDE_TEXT_HEIGHT_PT:
        raise ValueError(f"a height lies between 0 and the frame's height, got {text}")
    return text


def optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``auto``/``none``/empty → ``None``; anything else through ``parse``."""

    def parse_optional(value: Any) -> Any:
        if value is None or str(value).strip().lower() in {"", "auto", "none", "null"}:
            return None
        return parse(value)

    parse_optional.__doc__ = f"{parse.__doc__ or ''} or auto"
    return parse_optional


def option(default: Any, parse: Callable[[Any], Any], *, help: str, figure: bool = True,
           key: Callable[[Any], Any] | None = None):
    """One option of a kind: a dataclass field with its default, its parser and its help.

    ``figure=False``: it changes the slide, not the picture or data (caption, alt text, size on
    the slide), so it is left out of the cache key. ``key``: what of the value the cache key sees
    (a ``.run`` block's code without its ``#|`` lines, which are options of their own). The help is
    text for people: the cache key leaves it out too (see :func:`filters.cache.source_digest`).
    """
    return field(default=default, metadata={"help": help, "parse": parse, "figure": figure, "key": key})


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

    def time_limit(self) -> float | None:
        """Seconds the block may compute before it is stopped (``None``: no limit): a figure is
        drawn in seconds, so one still computing after :data:`FIGURE_TIME_LIMIT_S` is stuck."""
        return FIGURE_TIME_LIMIT_S

    def figure_captions(self) -> list[str]:
        """The captions the block gives for its pictures, in order (none: the kind's default)."""
        return []

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


@dataclass(frozen=True)
class Settings:
    """Document-wide settings: ``attnslides:`` metadata keys that belong to no block kind."""

    figures_dir: str = option("build/figures", as_folder,
                              help="where figures and their JSON data are written (a folder inside the project)")
    cache_dir: str = option("build/cache", as_folder, help="the content-addressed cache of figures (inside the project)")
    device: str = option("cpu", as_choice(*DEVICES), help=f"where the engine runs: {', '.join(DEVICES)}")
    lang: str | None = option(None, optional(as_choice(*LANGUAGES)),
                              help=f"language of figure labels: {' or '.join(LANGUAGES)} (auto: the deck's lang)")
    jobs: int = option(0, as_int(0, 64), help="worker processes for figures that miss the cache (0: one per core)")
    pdf_engine: str = option("auto", as_choice("auto", "pdflatex", "lualatex", "xelatex"),
                             help="the LaTeX engine: auto takes pdflatex (the fastest), or lualatex, with fallback "
                                  "fonts, when the text has characters pdflatex cannot set (Chinese, emoji, Greek …) "
                                  "or the deck loads fontspec; pandoc's --pdf-engine after '--' wins")
    pandoc_defaults: str = option("", as_str, help="a pandoc defaults file for `attnslides build` (relative to the "
                                  "deck's folder), read before the options given after '--'")
    overflow: str = option("error", as_choice("error", "warn"),
                           help="a frame whose content LaTeX cannot fit (more than 2 pt): error stops the build, "
                                "warn only says so")
    execute: bool = option(True, as_bool, help="run the deck's own code (.run blocks); false: show the code of "
                                               "those without a cached result, as `attnslides build --no-exec` does")


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def keys_of(cls: type) -> dict[str, dataclasses.Field]:
    """The options of an options class, by name."""
    return {f.name: f for f in dataclasses.fields(cls)}


def normalise_key(key: str) -> str:
    return str(key).strip().replace("-", "_")


def _suggest(key: str, valid) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(sorted(valid))}"


def _convert(cls: type, raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Check every key of ``raw`` against ``cls`` and parse its value."""
    fields = keys_of(cls)
    values = {}
    for key, value in raw.items():
        name = normalise_key(key)
        if name not in fields:
            raise BlockError(f"unknown option in {source}{_suggest(name, fields)}", key=str(key))
        if name in values:  # d-model=8 d_model=32: which one was meant?
            raise BlockError(f"given twice in {source} (as {name} and {name.replace('_', '-')}); keep one", key=name)
        try:
            values[name] = fields[name].metadata["parse"](value)
        except ValueError as exc:
            raise BlockError(f"bad value in {source}: {exc}", key=name) from None
    return values


_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")  # what an option's name looks like


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
    numbers = [n for n, line in enumerate(lines, start=1) if re.match(r"^\s*#\|", line)]  # of the body
    marked = [re.sub(r"^\s*#\|\s?", "", lines[n - 1]) for n in numbers]
    rest = "\n".join(line for line in lines if not re.match(r"^\s*#\|", line)).strip()
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


def read_metadata(meta: Any, kinds: Mapping[str, Any]) -> tuple[Settings, dict[str, dict[str, Any]]]:
    """Split ``attnslides:`` metadata into :class:`Settings` and per-kind raw defaults.

    Args:
        meta: the ``attnslides:`` metadata, as panflute gives it.
        kinds: the registry, name → :class:`filters.kind.Kind`.

    Raises:
        BlockError: for a key that is no setting, no kind and no option of any kind.
    """
    if meta is None or meta == "":
        meta = {}
    if not isinstance(meta, dict):
        raise BlockError(f"'attnslides:' must hold 'key: value' settings and options, got {meta!r}")
    settings_keys = keys_of(Settings)
    options = {name: keys_of(kind.options) for name, kind in kinds.items()}
    kind_defaults: dict[str, dict[str, Any]] = {name: {} for name in kinds}
    flat: dict[str, Any] = {}
    settings_raw: dict[str, Any] = {}
    for key, value in meta.items():
        name = normalise_key(key)
        if key in kinds:
            if not isinstance(value, dict):
                raise BlockError(f"'attnslides: {key}:' must hold options of .{key} blocks", key=key)
            _convert(kinds[key].options, value, f"metadata 'attnslides: {key}:'")  # checked now, parsed per block
            kind_defaults[key] = {normalise_key(k): v for k, v in value.items()}
        elif name in settings_keys:
            settings_raw[name] = value
        elif any(name in own for own in options.values()):
            flat[name] = value
        else:
            valid = set(settings_keys) | set(kinds) | {k for own in options.values() for k in own}
            raise BlockError(f"unknown key in the 'attnslides:' metadata{_suggest(name, valid)}", key=str(key))
    settings = Settings(**_convert(Settings, settings_raw, "metadata 'attnslides:'"))
    for name, own in options.items():
        kind_defaults[name] = {**{k: v for k, v in flat.items() if k in own}, **kind_defaults[name]}
    return settings, kind_defaults


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
    from_attributes = _convert(cls, attributes, "the block's attributes")
    from_body = _convert(cls, read_body(body, cls), "the block's body")
    twice = sorted(set(from_attributes) & set(from_body))
    if twice:
        raise BlockError("given both as an attribute and in the block's body; keep one", key=twice[0])
    from_meta = _convert(cls, defaults or {}, "metadata 'attnslides:'")
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


def _shown(default: Any) -> Any:
    return "auto" if default is None else list(default) if isinstance(default, tuple) else default


def describe(kinds: Mapping[str, Any], only: str | None = None) -> str:
    """Help text of every option (of one kind, or of all), for ``attnslides options``.

    A kind's own options come first, then the ones it shares with others, then those of the slide
    (caption, alt text, height)."""
    lines = []
    for name, kind in kinds.items():
        if only and name != only:
            continue
        lines.append(f".{name}: {kind.summary}")
        own = set(vars(kind.options).get("__annotations__", {}))
        fields = sorted(dataclasses.fields(kind.options),
                        key=lambda f: (not f.metadata["figure"], f.name not in own))
        for f in fields:
            lines.append(f"    {f.name:<14} {f.metadata['help']} (default: {_shown(f.default)})")
    if not only:
        lines.append("document settings (metadata 'attnslides:'):")
        for f in dataclasses.fields(Settings):
            lines.append(f"    {f.name.replace('_', '-'):<14} {f.metadata['help']} (default: {_shown(f.default)})")
    return "\n".join(lines)
