"""The one error a lecturer sees: it names the deck (and the line), the slide, the block and the key."""

from __future__ import annotations

import os
from dataclasses import dataclass

PREFIX = "attnslides:"


@dataclass(frozen=True)
class Where:
    """Where a block stands: deck file (or title), frame title, the block's label, and the line of
    the deck where the block's fence opens (``None`` when the deck's text is not at hand, as under
    ``pandoc -F``).

    ``block`` reads like the Markdown that wrote it, e.g. ``".attention #fig-gato (block 1 of 3)"``.
    """

    deck: str = "?"
    slide: str = "?"
    block: str = "?"
    line: int | None = None

    def __str__(self) -> str:
        deck = f"{self.deck}:{self.line}" if self.line else self.deck
        return f"{deck}, slide «{self.slide}», block {self.block}"

    def deck_line(self, body_line: int) -> str:
        """Line ``body_line`` (from 1) of the block's body, as the lecturer finds it: a line of
        the deck when the block's place is known, else a line of the block."""
        return f"line {self.line + body_line} of {self.deck}" if self.line else f"line {body_line} of the block"


class BlockError(Exception):
    """A live block cannot be built: bad option, bad value, or a failure while computing it.

    Attributes:
        where: the :class:`Where` of the block (may be filled in later by the filter).
        key: the offending option, or ``None`` when the whole block is at fault.
        message: what is wrong, with the fix when there is one ("did you mean 'seed'?").
        line: the line of the block's body at fault (from 1), when there is one.
        trace: the frames of a traceback that are the block's own code, as
            ``(body line, function, source)``; printed with the deck's line numbers.
        details: the full Python traceback behind it, shown with ``--traceback``
            (``ATTNSLIDES_TRACEBACK=1``).
    """

    def __init__(self, message: str, *, key: str | None = None, where: Where | None = None,
                 line: int | None = None, trace: tuple[tuple[int, str, str], ...] = (), details: str = ""):
        super().__init__(message)
        self.message, self.key, self.where, self.line, self.trace = message, key, where, line, tuple(trace)
        self.details = details

    def at(self, where: Where) -> BlockError:
        """The same error, located at ``where``."""
        return BlockError(self.message, key=self.key, where=where, line=self.line, trace=self.trace,
                          details=self.details)

    def __str__(self) -> str:
        where = self.where or Where()
        place = f"{self.where}: " if self.where else ""
        key = f"option '{self.key}': " if self.key else ""
        at = f"{where.deck_line(self.line)}: " if self.line else ""
        text = f"{PREFIX} {place}{key}{at}{self.message}"
        if self.trace:
            text += "\n  Traceback (the block's own lines; most recent call last):"
            for line, function, source in self.trace:
                text += f"\n    {where.deck_line(line)}, in {function}"
                if source:
                    text += f"\n      {source}"
        if self.details and tracebacks_wanted():
            text += "\n" + self.details.rstrip()
        return text


def tracebacks_wanted() -> bool:
    """``--traceback`` (``ATTNSLIDES_TRACEBACK=1``): show the Python traceback behind an error."""
    return os.environ.get("ATTNSLIDES_TRACEBACK", "") not in ("", "0")


class BlockErrors(BlockError):
    """Every error found in one deck, reported at once (so that one run shows them all)."""

    def __init__(self, errors: list[BlockError], deck: str):
        super().__init__(f"{len(errors)} problems in {deck}")
        self.errors = list(errors)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors) + f"\n{PREFIX} {self.message}"


class JobTimeout(BaseException):
    """A block ran past its time limit. A ``BaseException``, so that the block's own
    ``except Exception:`` cannot swallow it. ``line``: the line of the block's body it was on."""

    def __init__(self, line: int | None = None):
        super().__init__(line)
        self.line = line


class JobOutOfMemory(Exception):
    """A block tried to take more memory than its limit (:mod:`filters.workers.limits`).
    ``line``: the line of the block's body it was on."""

    def __init__(self, line: int | None = None):
        super().__init__(line)
        self.line = line

    @staticmethod
    def caused(exc: BaseException) -> bool:
        """Whether ``exc`` is an allocation that failed: Python's or numpy's ``MemoryError``, or
        torch's ``RuntimeError`` ("can't allocate memory")."""
        return isinstance(exc, MemoryError) or (isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc))
