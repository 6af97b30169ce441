"""Find a deck's live blocks without pandoc — for ``make gpu-check``, which runs on GPU machines that
have torch but no pandoc. The build itself always lets pandoc read the Markdown.

Reads fenced blocks whose attributes start with a kind, ```` ```{.attention #id key=value} ````,
the attributes possibly continued over several lines, as the lecture writes them. (Our own few
lines: a Markdown library would not know Pandoc's attribute syntax.)
"""

from __future__ import annotations

import re
import shlex

from filters.kinds import KINDS

_FENCE = re.compile(
    r"^(?P<fence>`{3,}|~{3,})\s*\{(?P<attrs>(?:\"(?:\\.|[^\"\\])*\"|'[^']*'|[^}\"'])*)\}\s*\n"  # {attrs}, "}" in quotes too
    r"(?P<body>.*?)^(?P=fence)\s*$",
    re.M | re.S,
)


def strip_live_blocks(markdown: str) -> str:
    """The deck without its live blocks (the same slides as plain pandoc would make, minus figures)."""

    def keep(match):
        classes = [w[1:] for w in shlex.split(match["attrs"].replace("\n", " ")) if w.startswith(".")]
        return "" if any(c in KINDS for c in classes) else match[0]

    return _FENCE.sub(keep, markdown)


def live_blocks(markdown: str) -> list[tuple[str, str, dict[str, str], str]]:
    """``(kind, identifier, attributes, body)`` of each live block, in order."""
    found = []
    for match in _FENCE.finditer(markdown):
        words = shlex.split(match["attrs"].replace("\n", " "))
        classes = [w[1:] for w in words if w.startswith(".")]
        kinds = [c for c in classes if c in KINDS]
        if not kinds:
            continue
        ident = next((w[1:] for w in words if w.startswith("#")), "")
        attributes = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith((".", "#")))
        found.append((kinds[0], ident, attributes, match["body"].rstrip("\n")))
    return found
