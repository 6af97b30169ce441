"""The error of a build that pandoc or LaTeX stopped, and how ``build`` and ``watch`` report it."""

from __future__ import annotations

import sys

from filters.errors import PREFIX


class BuildError(RuntimeError):
    """pandoc or LaTeX failed; the message holds what they said. ``reported``: the filter has
    already printed the reason on stderr; ``listed``: the message's lines carry the prefix."""

    def __init__(self, message: str, *, reported: bool = False, listed: bool = False):
        super().__init__(message)
        self.reported, self.listed = reported, listed


def report(exc: BuildError) -> None:
    """Print what ``exc`` says on stderr, unless it was said already (the one place ``attnslides
    build`` and ``watch`` report a failed deck)."""
    if exc.listed:
        print(exc, file=sys.stderr)
    elif not exc.reported:
        print(f"{PREFIX} {exc}", file=sys.stderr)
