"""Find a deck's live blocks in its Markdown text, without pandoc: where each one stands (its line,
for messages that say where), and for ``make gpu-check``, which runs on GPU machines that have
torch but no pandoc. The build itself always lets pandoc read the Markdown.

Reads fenced blocks whose attributes name a kind, ```` ```{.attention #id key=value} ````, the
attributes possibly continued over several lines, as the lecture writes them. (Our own few lines:
a Markdown library would not know Pandoc's attribute syntax.)
"""

from __future__ import annotations

import re
from typing import NamedTuple

from filters.kinds import KINDS

_FENCE = re.compile(
    r"^(?P<indent>[ \t>]*)(?P<fence>`{3,}|~{3,})[ \t]*"  # indented in a list item, or in a quote
    r"\{(?P<attrs>(?:\"(?:\\.|[^\"\\])*\"|'[^']*'|[^}\"'])*)\}\s*\n"  # {attrs}, "}" in quotes too
    r"(?P<body>.*?)^[ \t>]*(?P=fence)\s*$",
    re.M | re.S,
)


class ScannedBlock(NamedTuple):
    """One live block as the deck's text writes it."""

    kind: str
    identifier: str
    attributes: dict[str, str]
    body: str
    line: int  # the line of its opening fence, from 1
    repeated: tuple[str, ...] = ()  # keys written twice (pandoc keeps the last, silently)


# One attribute as pandoc reads it: #id, .class, or key=value with the value bare or quoted.
_ATTRIBUTE = re.compile(
    r"(?P<id>\#[^\s}]+)|(?P<cls>\.[^\s}]+)"  # #id, .class
    r"""|(?P<key>[^\s="'{}]+)=(?:"(?P<dq>(?:\\.|[^"\\])*)"|'(?P<sq>(?:\\.|[^'\\])*)'|(?P<bare>[^\s"'}]+))""")
# In a quoted value pandoc drops the backslash before any ASCII punctuation: \" → ", \\ → \, \, → ,
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


def _attributes(text: str) -> tuple[str, list[str], dict[str, str], tuple[str, ...]]:
    """The identifier, classes and key-value pairs of ``{…}``, as pandoc reads them, and the keys
    written twice."""
    ident, classes, pairs, repeated = "", [], {}, []
    for match in _ATTRIBUTE.finditer(text):
        if match["id"]:
            ident = match["id"][1:]
        elif match["cls"]:
            classes.append(match["cls"][1:])
        else:
            quoted = match["dq"] if match["dq"] is not None else match["sq"]
            if match["key"] in pairs:
                repeated.append(match["key"])
            pairs[match["key"]] = _ESCAPED.sub(r"\1", quoted) if quoted is not None else match["bare"]
    return ident, classes, pairs, tuple(repeated)


def _classes(match: re.Match) -> list[str]:
    return _attributes(match["attrs"])[1]


def strip_live_blocks(markdown: str) -> str:
    """The deck without its live blocks (the same slides as plain pandoc would make, minus figures)."""
    return _FENCE.sub(lambda match: "" if any(c in KINDS for c in _classes(match)) else match[0], markdown)


def live_blocks(markdown: str) -> list[ScannedBlock]:
    """Every live block of ``markdown``, in order."""
    found = []
    for match in _FENCE.finditer(markdown):
        ident, classes, attributes, repeated = _attributes(match["attrs"])
        kinds = [c for c in classes if c in KINDS]
        if not kinds:
            continue
        line = markdown.count("\n", 0, match.start()) + 1
        indent = match["indent"]
        body = "\n".join(row[len(indent):] if row.startswith(indent) else row.lstrip(" \t>")
                         for row in match["body"].rstrip("\n").split("\n"))
        found.append(ScannedBlock(kinds[0], ident, attributes, body, line, repeated))
    return found


def same_body(ours: str, pandocs: str) -> bool:
    """Whether a body read here is the one pandoc read (pandoc expands tabs and strips the
    indentation of a block in a list item or a quote)."""
    def lines(text):
        return [row.expandtabs(4).strip() for row in text.strip("\n").splitlines()]
    return lines(ours) == lines(pandocs)
