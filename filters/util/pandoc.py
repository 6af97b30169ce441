"""The pandoc every stage runs: the one inside ``pypandoc-binary`` (pandoc 3.x), never whichever
pandoc is on PATH (Debian's 2.17 cannot read the Figures the filter writes); and how it runs:
always bounded in time and memory (:func:`run_pandoc`)."""

from __future__ import annotations

import functools
import subprocess

from filters.util.processes import CHILD_MEMORY_BYTES, run_bounded

# pandoc reading deeply nested brackets ([[[[…]]]]) takes minutes and gigabytes; no deck needs that.
PANDOC_TIME_LIMIT_S = 120.0
# A caption or a slide's title is a line: read in well under a second, or never (25 "[" take minutes).
TEXT_TIME_LIMIT_S = 20.0


class PandocTimeout(RuntimeError):
    """pandoc ran past its time limit and was stopped (``limit``: the seconds it had)."""

    def __init__(self, limit: float):
        super().__init__(f"pandoc ran for more than {limit:g} s and was stopped")
        self.limit = limit


def pandoc_path() -> str:
    """The pandoc shipped in ``pypandoc-binary``."""
    import pypandoc

    return pypandoc.get_pandoc_path()


@functools.cache
def pandoc_version() -> str:
    """The version of that pandoc (what a build tells its filter, as pandoc tells its filters in
    ``PANDOC_VERSION``)."""
    import pypandoc

    return str(pypandoc.get_pandoc_version())


def run_pandoc(args: list[str], *, stdin: str | None = None, limit: float = PANDOC_TIME_LIMIT_S,
               memory: int = CHILD_MEMORY_BYTES) -> subprocess.CompletedProcess:
    """pandoc with ``args`` (``stdin``: its input text), in a process group of its own, at most
    ``limit`` seconds and ``memory`` bytes, dying with the build
    (:func:`filters.util.processes.run_bounded`).

    Raises:
        PandocTimeout: when it ran past ``limit`` (it was killed, with whatever it started).
    """
    try:
        return run_bounded([pandoc_path(), *args], input=stdin, timeout=limit, memory=memory)
    except subprocess.TimeoutExpired:
        raise PandocTimeout(limit) from None


def read_text(text: str, input_format: str) -> str:
    """A short text (a caption, a title) read by pandoc as ``input_format``: the document as
    pandoc's JSON, or ``""`` when pandoc fails.

    Raises:
        PandocTimeout: when pandoc ran past :data:`TEXT_TIME_LIMIT_S`.
    """
    done = run_pandoc(["--from", input_format, "--to", "json", "--quiet"], stdin=text, limit=TEXT_TIME_LIMIT_S)
    return done.stdout if done.returncode == 0 else ""
