"""Reading LaTeX's log back: which frame of the deck overflows, which slide an error comes from.

LaTeX says "Overfull \\vbox (10.4pt too high) detected at line 244" and "deck.tex:244: Undefined
control sequence"; a lecturer needs "slide «Auto-atención»". Every message with a line of the
``.tex`` is mapped to the Beamer frame around that line, with the frame's title as LaTeX (the build
reads it back as text, :func:`filters.pipeline.pdf.plain_title`: this module knows nothing of pandoc).
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
_BANG = re.compile(r"^! (.+)$", re.M)  # TeX's own error line
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


# LuaLaTeX: "Missing character: There is no ሰ (U+1230) in font …"; pdfLaTeX: "… There is no ^^e1 in font …".
_MISSING = re.compile(r"^Missing character: There is no (?P<char>\S+)(?: \(U\+(?P<code>[0-9A-F]+)\))? in font", re.M)


def missing_characters(log: str, tex: str) -> list[tuple[str, list[Frame]]]:
    """The characters LaTeX had no glyph for (it set nothing, or an empty box, in their place), each
    with the frames of ``tex`` whose text has it (the log does not say where)."""
    found: dict[str, list[Frame]] = {}
    all_frames, lines = frames(tex), tex.splitlines()
    for match in _MISSING.finditer(log):
        char = chr(int(match["code"], 16)) if match["code"] else match["char"]
        if char not in found:
            found[char] = [f for f in all_frames if char in "\n".join(lines[f.first - 1:f.last])]
    return list(found.items())


def errors(log: str, tex: str, tex_name: str) -> list[tuple[str, Frame | None]]:
    """LaTeX's errors in ``log`` (with ``-file-line-error``) that point into the deck's ``.tex``,
    each with its frame."""
    all_frames, found = frames(tex), []
    for match in _ERROR.finditer(log):
        if Path(match["file"]).name != tex_name:
            continue
        message = match["message"].strip()
        if message.startswith(("Emergency stop", "==> Fatal error")):  # the cause is the "! …" line before
            cause = _BANG.findall(log, 0, match.start())
            message = cause[-1].strip() if cause else message
        found.append((message, frame_at(all_frames, int(match["line"]))))
    return found
