"""Value parsers of live blocks' options: a raw value (an attribute's text, or a YAML value) → a
typed value. Each raises ``ValueError`` with a message that says what was expected; the option
machinery (:mod:`filters.blocks.options`) names the block and the key.

Also here: YAML read safely (no aliases, no key twice, ``1e-3`` a number) and the geometry of a
Beamer slide that sizes are measured against. No heavy imports.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

import yaml

_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters: a message quotes what it got, never pages of it."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"a number of about {int(value.bit_length() * 0.30103):,} digits"  # repr() refuses over 4,300
    text = repr(value) if not isinstance(value, str) or len(value) <= 10**5 else repr(value[:limit + 1])
    return text if len(text) <= limit else f"{text[:limit - 1]}… ({len(text):,} characters)"



# The control characters a backslash escape makes of a LaTeX command: in a double-quoted YAML string
# or a plain Python string, "$d_\text{model}$" is "$d_", a tab, "ext{model}$" (the slide shows
# "d_extmodel", without a word). Each: its escape's letter, and what it is called.
_ESCAPES = {"\t": ("t", "a tab"), "\b": ("b", "a backspace"), "\f": ("f", "a form feed"), "\a": ("a", "a bell"),
            "\v": ("v", "a vertical tab"), "\r": ("r", "a carriage return"), "\n": ("n", "a newline")}
# Math in a text as pandoc reads it: $…$ (no space inside either dollar) or $$…$$.
_MATH = re.compile(r"\$\$(?:[^$\\]|\\.)+?\$\$|\$(?!\s)(?:[^$\\]|\\.)+?(?<!\s)\$", re.DOTALL)


def escape_problem(text: str, *, math: bool = False) -> str | None:
    """What is wrong with ``text`` (a caption, an option's value, a figure's label) if it holds a
    control character: a tab, backspace, form feed, bell, vertical tab or carriage return anywhere,
    or a newline inside ``$…$`` math (``math=True``: the whole text is math). ``None`` when none.

    The message names the character, the LaTeX command it most likely was (``\t`` of ``\text``),
    the text as it was meant, and the fix: single quotes in YAML, ``r"..."`` in Python.
    """
    spans = [(0, len(text))] if math else [m.span() for m in _MATH.finditer(text)]
    at = next((n for n, c in enumerate(text) if (ord(c) < 32 or c == "\x7f") and c != "\n"), None)
    if at is None:
        at = next((a + text[a:b].index("\n") for a, b in spans if "\n" in text[a:b]), None)
    if at is None:
        return None
    char = text[at]
    if char not in _ESCAPES:
        return f"{shown(text)} holds the control character U+{ord(char):04X}, which a slide cannot show"
    letter, name = _ESCAPES[char]
    command = "\\" + letter + re.match(r"[A-Za-z]*", text[at + 1:])[0]
    meant = "".join("\\" + _ESCAPES[c][0] if c in _ESCAPES and c != "\n" else c for c in text)
    meant = meant[:at] + "\\" + letter + meant[at + 1:] if char == "\n" else meant
    meant = meant if len(meant) <= 60 else meant[:59] + "…"
    seen = "".join(f"⟨{_ESCAPES[c][1].split(' ', 1)[1]}⟩" if c in _ESCAPES else c for c in text)
    seen = seen if len(seen) <= 80 else seen[:79] + "…"
    return (f"'{seen}' holds {name} where `{command}` was likely meant: `\\{letter}` of `{command}` was read as "
            f"{name} (a backslash escape in a double-quoted YAML string or a Python string); use single quotes in "
            f"YAML ('{meant}'), or r\"...\" in Python (r\"{meant}\")")


def check_escapes(value: Any) -> None:
    """Raise ``ValueError`` (:func:`escape_problem`'s message) if ``value``, or any text in it (a
    list of captions, a mapping), holds a control character where LaTeX was likely meant."""
    if isinstance(value, str):
        problem = escape_problem(value)
        if problem:
            raise ValueError(problem)
    elif isinstance(value, dict):
        for item in value.values():
            check_escapes(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            check_escapes(item)


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


_MEMORY_UNITS = {"": 1.0, "gb": 1.0, "g": 1.0, "gib": 1.0, "mb": 1 / 1024, "m": 1 / 1024, "mib": 1 / 1024,
                 "tb": 1024.0, "t": 1024.0, "tib": 1024.0}


def as_gigabytes(value: Any) -> float:
    """An amount of memory in gigabytes (of 1024³ bytes): ``4``, ``"4GB"``, ``"512MB"``, ``"1.5 GiB"``."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(value))
    unit = match[2].lower() if match else None
    if unit not in _MEMORY_UNITS:
        raise ValueError(f"expected an amount of memory such as 4GB or 512MB, got {shown(value)}")
    number = float(match[1]) * _MEMORY_UNITS[unit]
    if not number > 0:
        raise ValueError(f"expected an amount of memory > 0, got {shown(value)}")
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


# What a figure's sizes become on the slide. Beamer's text height on a 4:3 frame (128 × 96 mm) of
# the lectures' theme is 260.48 pt; a figure of height "72%" is drawn 0.72 × that high. (A deck's own
# theme and aspect ratio: filters.blocks.page.)
SLIDE_TEXT_HEIGHT_PT = 260.48
_CM = 72.27 / 2.54  # TeX points per centimetre


def slide_points(height: str, *, text_height: float = SLIDE_TEXT_HEIGHT_PT) -> float:
    """``height`` (``"66%"`` of the text height, or a length such as ``"5cm"``, as :func:`as_size`
    reads it) in TeX points on a Beamer slide whose text is ``text_height`` points high."""
    value, unit = float(height.rstrip("%cmin pte")), height.lstrip("0123456789.")
    return {"%": value / 100 * text_height, "cm": value * _CM, "mm": value * _CM / 10,
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

