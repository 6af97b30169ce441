"""Reading LaTeX's log back: which frame of the deck overflows, which slide an error comes from.

LaTeX says "Overfull \\vbox (10.4pt too high) detected at line 244" and "deck.tex:244: Undefined
control sequence"; a lecturer needs "slide «Auto-atención»". Every message with a line of the
``.tex`` is mapped to the Beamer frame around that line, and the frame's title read back as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# LaTeX's own words (TeXbook, chapter 24): the box, by how much, and where it was found.
_OVERFULL = re.compile(
    r"^Overfull \\(?P<box>[hv])box \((?P<points>[\d.]+)pt too (?:high|wide)\) "
    r"(?:detected at line (?P<at>\d+)|in (?:paragraph|alignment) at lines (?P<start>\d+)--\d+|.*)", re.M)
# -file-line-error: "./deck.tex:123: Undefined control sequence."
_ERROR = re.compile(r"^(?:\./)?(?P<file>[^\s:]+\.tex):(?P<line>\d+): (?P<message>.+)$", re.M)
_FRAME_START = re.compile(r"\\begin\{frame\}|\\frame\{")
_FRAME_END = re.compile(r"\\end\{frame\}")


@dataclass(frozen=True)
class Frame:
    """A frame of the ``.tex``: its lines (from 1, inclusive) and its title as LaTeX."""

    first: int
    last: int
    title: str  # LaTeX source of the title ("" for a frame without one)


@dataclass(frozen=True)
class Overflow:
    """A box LaTeX could not fit: ``box`` is "v" (content taller than the frame) or "h" (a line
    wider than the text); ``frame`` the frame it is in, if the log says where."""

    box: str
    points: float
    line: int | None
    frame: Frame | None


def _braced(text: str, start: int) -> str:
    """The text of the brace group opening at ``text[start]`` (braces inside it balanced)."""
    depth = 0
    for end in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            return text[start + 1:end]
    return text[start + 1:]


def frames(tex: str) -> list[Frame]:
    """Every frame of a Beamer ``.tex`` (after ``\\begin{document}``), in order, with its line
    range and title. A one-line ``\\frame{\\titlepage}`` is a frame of that line."""
    found, lines = [], tex.splitlines()
    body = next((n for n, line in enumerate(lines, start=1) if "\\begin{document}" in line), 0)
    starts = [n for n, line in enumerate(lines, start=1) if n > body and _FRAME_START.search(line)]
    for start in starts:
        if "\\begin{frame}" not in lines[start - 1]:
            found.append(Frame(start, start, ""))
            continue
        end = next((n for n in range(start, len(lines) + 1) if _FRAME_END.search(lines[n - 1])), len(lines))
        head = "\n".join(lines[start - 1:min(start + 2, len(lines))])
        title = ""
        opening = re.search(r"\\begin\{frame\}(?:\[[^\]]*\])?(?:<[^>]*>)?\{", head)
        if opening:
            title = _braced(head, opening.end() - 1)
        elif "\\frametitle{" in "\n".join(lines[start - 1:end]):
            body = "\n".join(lines[start - 1:end])
            title = _braced(body, body.index("\\frametitle{") + len("\\frametitle"))
        found.append(Frame(start, end, title))
    return found


def frame_at(all_frames: list[Frame], line: int | None) -> Frame | None:
    """The frame holding ``line`` of the ``.tex``, if any."""
    if line is None:
        return None
    return next((f for f in all_frames if f.first <= line <= f.last), None)


def overflows(log: str, tex: str, *, tolerance: float = 2.0) -> list[Overflow]:
    """The overfull boxes of ``log`` bigger than ``tolerance`` points, each with its frame of ``tex``."""
    all_frames, found = frames(tex), []
    for match in _OVERFULL.finditer(log):
        points = float(match["points"])
        if points <= tolerance:
            continue
        line = int(match["at"] or match["start"]) if (match["at"] or match["start"]) else None
        found.append(Overflow(match["box"], points, line, frame_at(all_frames, line)))
    return found


def errors(log: str, tex: str, tex_name: str) -> list[tuple[str, Frame | None]]:
    """LaTeX's errors in ``log`` (with ``-file-line-error``) that point into the deck's ``.tex``,
    each with its frame."""
    all_frames = frames(tex)
    return [(match["message"].strip(), frame_at(all_frames, int(match["line"])))
            for match in _ERROR.finditer(log) if Path(match["file"]).name == tex_name]


def plain_title(latex_title: str) -> str:
    """A frame title as plain text (``Atenci\\'on \\(\\sqrt{d_k}\\)`` → ``Atención √d_k``), read by pandoc."""
    if not latex_title.strip():
        return "(a frame without a title)"
    if not re.search(r"[\\{}$]", latex_title):
        return latex_title.strip()
    import pypandoc

    try:
        text = pypandoc.convert_text(latex_title, "plain", format="latex", extra_args=["--wrap=none", "--quiet"])
    except (RuntimeError, OSError):
        return latex_title.strip()
    return " ".join(text.split()) or latex_title.strip()
