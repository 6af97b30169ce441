"""The one error a lecturer sees: it names the deck, the slide, the block and the key."""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "attnslides:"


@dataclass(frozen=True)
class Where:
    """Where a block stands: deck file (or title), frame title, and the block's label.

    ``block`` reads like the Markdown that wrote it, e.g. ``".attention #fig-gato (block 1 of 3)"``.
    """

    deck: str = "?"
    slide: str = "?"
    block: str = "?"

    def __str__(self) -> str:
        return f"{self.deck}, slide «{self.slide}», block {self.block}"


class BlockError(Exception):
    """A live block cannot be built: bad option, bad value, or a failure while computing it.

    Attributes:
        where: the :class:`Where` of the block (may be filled in later by the filter).
        key: the offending option, or ``None`` when the whole block is at fault.
        message: what is wrong, with the fix when there is one ("did you mean 'seed'?").
    """

    def __init__(self, message: str, *, key: str | None = None, where: Where | None = None):
        super().__init__(message)
        self.message, self.key, self.where = message, key, where

    def at(self, where: Where) -> BlockError:
        """The same error, located at ``where``."""
        return BlockError(self.message, key=self.key, where=where)

    def __str__(self) -> str:
        place = f"{self.where}: " if self.where else ""
        key = f"option '{self.key}': " if self.key else ""
        return f"{PREFIX} {place}{key}{self.message}"
