"""Reading LaTeX's log back: which frame of the deck overflows, which slide an error comes from.

LaTeX says "Overfull \\vbox (10.4pt too high) detected at line 244" and "deck.tex:244: Undefined
control sequence"; a lecturer needs "slide «Auto-atención»". Every message with a line of the
``.tex`` is mapped to the slide around that line (a Beamer frame; in a handout, the section), with
its title as LaTeX (the build reads it back as text, :func:`filters.pipeline.pdf.plain_title`: this
module knows nothing of pandoc). An error in another file (the ``.vrb`` Beamer writes a frame with
code to, a file the deck includes, a package) is mapped by the marks :file:`preamble.tex` writes in
the log as each slide begins ("attnslides-mark: slide at line 12") and as the document begins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# LaTeX's own words (TeXbook, chapter 24): the box, by how much, and where it was found.
_OVERFULL = re.compile(
    r"^Overfull \\(?P<box>[hv])box \((?P<points>[\d.]+)pt too (?:high|wide)\) "
    r"(?:detected at line (?P<at>\d+)|in (?:paragraph|alignment) at lines (?P<start>\d+)--\d+|.*)", re.M)
# -file-line-error: "./deck.tex:123: Undefined control sequence." (any file: deck.vrb, a package's
# .sty); and "!pdfTeX error: …", which names no line.
_ERROR = re.compile(r"^(?:(?:\./)?(?P<file>[^\s:]+\.\w+):(?P<line>\d+): |!\s?)(?P<message>.+)$", re.M)
_BANG = re.compile(r"^! (.+)$", re.M)  # TeX's own error line
# What preamble.tex writes in the log: each slide as it begins (its line in the .tex), and the
# document's beginning (an error before it is the preamble's).
_SLIDE_MARK = re.compile(r"^attnslides-mark: slide at line (\d+)$", re.M)
_BEGINS = "attnslides-mark: the document begins"
_HEADING = re.compile(r"\\(?:part|chapter|section|subsection|subsubsection)\*?\{")
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


def sections(tex: str) -> list[Frame]:
    """Every heading of a handout's ``.tex`` (an article: a slide is a ``\\section`` or
    ``\\subsection``), each up to the next, with its title."""
    lines, found = tex.splitlines(), []
    body = next((n for n, line in enumerate(lines, start=1) if "\\begin{document}" in line), 0)
    starts = [(n, match) for n, line in enumerate(lines, start=1) if n > body and (match := _HEADING.search(line))]
    for k, (start, match) in enumerate(starts):
        end = starts[k + 1][0] - 1 if k + 1 < len(starts) else len(lines)
        found.append(Frame(start, end, _braced(lines[start - 1], match.end() - 1)))
    return found


def slides(tex: str) -> list[Frame]:
    """The slides of a ``.tex``: its Beamer frames, or (a handout) its sections."""
    return frames(tex) or sections(tex)


def frame_at(all_frames: list[Frame], line: int | None) -> Frame | None:
    """The frame holding ``line`` of the ``.tex``, if any."""
    if line is None:
        return None
    return next((f for f in all_frames if f.first <= line <= f.last), None)


def overflows(log: str, tex: str, *, tolerance: float = 2.0) -> list[Overflow]:
    """The overfull boxes of ``log`` bigger than ``tolerance`` points, each with its slide of ``tex``."""
    all_frames, found = slides(tex), []
    for match in _OVERFULL.finditer(log):
        points = float(match["points"])
        if points <= tolerance:
            continue
        line = int(match["at"] or match["start"]) if (match["at"] or match["start"]) else None
        found.append(Overflow(match["box"], points, line, frame_at(all_frames, line)))
    return found


def per_frame(found: list[Overflow]) -> list[tuple[Overflow, int]]:
    """``found`` once per frame, box and line, in order, each with how many times the log had it:
    Beamer typesets a frame once per overlay (``\\pause``, an incremental list, a worked example's
    steps), so its overfull box comes once per page. The one kept is the largest."""
    grouped: dict[tuple, list[Overflow]] = {}
    for overflow in found:
        grouped.setdefault((overflow.frame, overflow.box, overflow.line), []).append(overflow)
    return [(max(same, key=lambda o: o.points), len(same)) for same in grouped.values()]


# LuaLaTeX: "Missing character: There is no ሰ (U+1230) in font …"; pdfLaTeX: "… There is no ^^e1 in font …".
_MISSING = re.compile(r"^Missing character: There is no (?P<char>\S+)(?: \(U\+(?P<code>[0-9A-F]+)\))? in font", re.M)


def missing_characters(log: str, tex: str) -> list[tuple[str, list[Frame]]]:
    """The characters LaTeX had no glyph for (it set nothing, or an empty box, in their place), each
    with the frames of ``tex`` whose text has it (the log does not say where)."""
    found: dict[str, list[Frame]] = {}
    all_frames, lines = slides(tex), tex.splitlines()
    for match in _MISSING.finditer(log):
        char = chr(int(match["code"], 16)) if match["code"] else match["char"]
        if char not in found:
            found[char] = [f for f in all_frames if char in "\n".join(lines[f.first - 1:f.last])]
    return list(found.items())


@dataclass(frozen=True)
class Error:
    """An error of LaTeX's: its message, the slide it is in (``None``: outside every slide), and
    whether it came before the document began (the preamble: the deck's ``header-includes``, a
    package, the theme)."""

    message: str
    frame: Frame | None
    preamble: bool = False


def errors(log: str, tex: str, tex_name: str) -> list[Error]:
    """LaTeX's errors in ``log`` (run with ``-file-line-error``), in order, each with its slide of
    ``tex`` (named ``tex_name``): by its line when it is in the ``.tex``, else (the ``.vrb`` of a
    frame with code, an included file, a package) by the last slide the log says began before it.
    "Emergency stop" and "Fatal error" lines, which follow an error, are not counted again."""
    all_frames, found = slides(tex), []
    begins = next((n for n, line in enumerate(tex.splitlines(), start=1) if "\\begin{document}" in line), 0)
    for match in _ERROR.finditer(log):
        message = match["message"].strip()
        if message.startswith(("Emergency stop", "==> Fatal error")):  # the cause is the error before
            if found:
                continue
            cause = _BANG.findall(log, 0, match.start())
            message = cause[-1].strip() if cause else message
        if match["file"] and Path(match["file"]).name == tex_name:
            line = int(match["line"])
            found.append(Error(message, frame_at(all_frames, line), preamble=line < begins))
            continue
        marks = _SLIDE_MARK.findall(log, 0, match.start())
        begun = bool(marks) or log.rfind(_BEGINS, 0, match.start()) >= 0
        found.append(Error(message, frame_at(all_frames, int(marks[-1])) if marks else None, preamble=not begun))
    return found


# "TeX capacity exceeded, sorry [main memory size=5000000]": which of TeX's fixed tables ran out.
_CAPACITY = re.compile(r"TeX capacity exceeded, sorry \[(?P<what>[^=\]]+)(?:=(?P<size>\d+))?\]")


def explained(message: str) -> str:
    """``message`` in plain words where LaTeX's own are cryptic: a capacity error says what ran out
    and what to do ("LaTeX ran out of room …"); any other message is returned as it is."""
    match = _CAPACITY.search(message)
    if not match:
        return message
    what = match["what"].strip()
    if what in ("main memory size", "pool size", "save size", "string characters", "number of strings"):
        why = ("the slide holds more than LaTeX can typeset at once (thousands of printed lines?): print less, "
               "or split it over several slides")
    else:  # input stack size, grouping levels, parameter stack size …
        why = "a macro that calls itself without end?"
    return f"LaTeX ran out of room ({what}, {match['size'] or 'its limit'}): {why} [{message}]"
