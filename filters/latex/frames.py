"""Only the frames that changed: a one-word edit changes one frame, and typesetting the other frames
again is most of a pass (about 30 ms a page).

When the deck's structure is as before (the same preamble, the same number of frames, nothing but
blank lines between them, no sections), only the changed frames are typeset, in a document of
their own that starts at their frame and page numbers and reads the deck's .aux/.nav (so "3 / 28",
links and labels are as in the full run); their pages then replace the old pages' content in the
PDF, page objects kept (so bookmarks and named links stay valid). Anything else (a page more or
less, a label that moved, an error) falls back to the full passes (:mod:`filters.latex.runner`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from filters.latex import log as texlog
from filters.latex.passes import HANDED_ON, command, digest, read_inputs, run_pass, whole_pdf
from filters.util.files import write_atomic

_SECTIONING = re.compile(r"\\(?:section|subsection|part|appendix|againframe)\b|noframenumbering")


PARTIAL_SUFFIX = "-frames"  # the jobname of the document of changed frames: <deck>-frames.tex


def layout(text: str) -> dict | None:
    """The frames of a Beamer ``.tex`` as the frame-level rebuild needs them: the preamble's
    hash and each frame's text; ``None`` when the body holds anything but frames and blank lines."""
    head, begins, body = text.partition("\\begin{document}")
    lines = text.splitlines()
    found = texlog.frames(text)
    if not begins or not found or _SECTIONING.search(body):
        return None
    inside = set()
    for frame in found:
        inside.update(range(frame.first, frame.last + 1))
    start = next(n for n, line in enumerate(lines, start=1) if "\\begin{document}" in line)
    outside = [lines[n - 1].strip() for n in range(start + 1, len(lines) + 1) if n not in inside]
    if any(line not in ("", "\\end{document}") for line in outside):
        return None
    return {"head": hashlib.sha256(head.encode()).hexdigest(),
            "frames": ["\n".join(lines[f.first - 1:f.last]) for f in found]}


_FRAME_PAGES = re.compile(r"\\beamer@framepages \{(\d+)\}\{(\d+)\}")


def pages_of(tex: Path, layout: dict | None) -> dict:
    """What the record keeps for a later frame-level rebuild: the preamble's hash, each frame's
    hash and pages (from the ``.nav``), when the ``.nav`` lists as many frames as the text has."""
    if layout is None:
        return {}
    try:
        pages = [(int(a), int(b)) for a, b in _FRAME_PAGES.findall(tex.with_suffix(".nav").read_text())]
    except OSError:
        return {}
    if len(pages) != len(layout["frames"]):
        return {}
    return {"head": layout["head"], "frames": [hashlib.sha256(f.encode()).hexdigest() for f in layout["frames"]],
            "pages": pages}


def changed_frames_only(tex: Path, deck_text: str, layout: dict, last: dict, record: dict, env: dict, *,
                        ahead: subprocess.Popen | None = None) -> tuple[str, subprocess.CompletedProcess, str] | None:
    """Typeset only the frames whose text changed since the last run and put their pages in the
    PDF; ``None`` when this cannot stand for a full run (the caller then runs the passes).
    ``ahead``: a LaTeX started ahead for this command, which its pass takes (a process that has ended,
    used or not, is never given a file)."""
    hashes = [hashlib.sha256(f.encode()).hexdigest() for f in layout["frames"]]
    changed = _changed(tex, layout, hashes, last, record)
    if changed is None:
        return None
    pages = last["pages"]
    before, end = _counters(tex.with_suffix(".aux"))
    if any(k not in before and k != 0 for k in changed):
        return None  # a frame the full run kept no numbers for
    partial, text = _partial_document(tex, deck_text, layout, changed, pages, before)
    done = run_pass([*command(record["engine"], record["format"]), partial.name], tex.parent, env,
                    ahead=ahead if ahead is not None and ahead.poll() is None else None)
    log = partial.with_suffix(".log").read_text(errors="replace") if partial.with_suffix(".log").exists() else ""
    if done.returncode != 0 or troubled(partial.with_suffix(".log"), text):
        return None  # the full run says what is wrong (an error, a frame that overflows), in the deck's log
    if not _stands_for_the_full_run(tex, partial, changed, pages, before, end):
        return None
    if not _replace_pages(tex.with_suffix(".pdf"), partial.with_suffix(".pdf"),
                          [n for k in changed for n in range(pages[k][0], pages[k][1] + 1)]):
        return None
    inputs = {**last["inputs"], **{n: d for n, d in read_inputs(partial).items()
                                   if not Path(n).name.startswith(partial.stem)}}
    partial.with_suffix(".pdf").unlink(missing_ok=True)  # its pages are in the deck's PDF now
    write_atomic(tex.with_suffix(".passes.json"),
                 json.dumps({**last, **record, "inputs": inputs, "frames": hashes,
                             "pdf": whole_pdf(tex.with_suffix(".pdf"))}, indent=1).encode())
    return log, done, text


def _changed(tex: Path, layout: dict, hashes: list[str], last: dict, record: dict) -> list[int] | None:
    """The frames whose text changed, when the rest is as the last full run left it (the preamble,
    the number of frames, the engine, format and date, every file it read, the PDF it wrote) and
    they are few; otherwise ``None``."""
    if (last.get("head") != layout["head"] or len(last.get("frames", [])) != len(hashes)
            or last.get("pdf") is None or whole_pdf(tex.with_suffix(".pdf")) != last["pdf"]
            or {k: last.get(k) for k in ("engine", "format", "date")} != {k: record[k] for k in ("engine", "format", "date")}
            or not all(digest(tex.parent / n if not Path(n).is_absolute() else Path(n)) == d
                       for n, d in last["inputs"].items() if not n.endswith(".tex"))):
        return None
    changed = [k for k, (new, old) in enumerate(zip(hashes, last["frames"], strict=True)) if new != old]
    if not changed or len(changed) > max(1, len(hashes) // 3):
        return None
    if last.get("troubled", True):
        return None  # the full run's log says something is off a slide: it stays the log that is read
    return changed


def _partial_document(tex: Path, deck_text: str, layout: dict, changed: list[int], pages: list,
                      before: dict) -> tuple[Path, str]:
    """Write the document of the ``changed`` frames (``<deck>-frames.tex``), each starting at its
    numbers in the full run, beside what the full run handed on; return its path and text."""
    partial = tex.with_name(tex.stem + PARTIAL_SUFFIX + ".tex")
    text = deck_text.partition("\\begin{document}")[0] + "\\begin{document}\n"
    for k in changed:  # the counters as they stand before frame k in the full run, and a mark after it
        # (\\mode<all>: pandoc's Beamer class option ignorenonframetext would skip it outside a frame)
        numbers = "".join(f"\\setcounter{{{name}}}{{{value}}}"
                          for name, value in zip(_COUNTED, before.get(k, (0,) * len(_COUNTED)), strict=True))
        text += (f"\\mode<all>{{\\setcounter{{framenumber}}{{{k}}}\\setcounter{{page}}{{{pages[k][0]}}}{numbers}}}\n"
                 f"{layout['frames'][k]}\n\\mode<all>{{\\attnslidesmark{{after}}}}\n")
    text += "\\end{document}\n"
    partial.write_text(text)
    for suffix in HANDED_ON:  # what the full run knows: totals, labels, the frames' pages
        if tex.with_suffix(suffix).exists():
            shutil.copy(tex.with_suffix(suffix), partial.with_suffix(suffix))
    return partial, text


def _stands_for_the_full_run(tex: Path, partial: Path, changed: list[int], pages: list, before: dict, end) -> bool:
    """Whether the changed frames' pages can replace the old ones: as many pages, the same numbers
    after each (figures, footnotes …), and no label that moved or is new."""
    new_pages = [(int(a), int(b)) for a, b in _FRAME_PAGES.findall(partial.with_suffix(".nav").read_text())]
    if [b - a for a, b in new_pages] != [pages[k][1] - pages[k][0] for k in changed]:
        return False  # a page more or less: every later page moves
    after = _counters(partial.with_suffix(".aux"), mark="after")[0]
    expected = {k: before.get(k + 1, end) for k in changed}  # what the next frame starts with, in the full run
    if [after.get(k + 1) for k in changed] != [expected[k] for k in changed]:
        return False  # a figure or footnote more or less: later numbers move
    labels = set(re.findall(r"^\\newlabel.*$", partial.with_suffix(".aux").read_text(), re.M))
    return labels <= set(re.findall(r"^\\newlabel.*$", tex.with_suffix(".aux").read_text(), re.M))


def troubled(log: Path, text: str) -> bool:
    """Whether ``log`` says something is off a slide (an overflow, a missing glyph), as
    :func:`filters.pipeline.pdf.to_pdf` reads it."""
    try:
        written = log.read_text(errors="replace")
    except OSError:
        return True
    return bool(texlog.overflows(written, text)) or bool(texlog.missing_characters(written, text))


_COUNTED = ("figure", "table", "footnote", "equation")  # numbered things a frame may hold (preamble.tex)


_COUNTERS = re.compile(r"^\\attnslidescounters\{(\w+)\}\{(\d+)\}\{(\d+)\}\{(\d+)\}\{(\d+)\}\{(\d+)\}", re.M)


def _counters(aux: Path, mark: str = "before") -> tuple[dict[int, tuple[int, ...]], tuple[int, ...] | None]:
    """The numbers :data:`_COUNTED` stood at, by frame number, as ``\\attnslidesmark{mark}`` wrote
    them in ``aux`` (preamble.tex), and those at the end of the document."""
    try:
        found = _COUNTERS.findall(aux.read_text(errors="replace"))
    except OSError:
        return {}, None
    marks = {int(f[1]): tuple(map(int, f[2:])) for f in found if f[0] == mark}
    end = next((tuple(map(int, f[2:])) for f in found if f[0] == "end"), None)
    return marks, end


def _replace_pages(pdf: Path, partial: Path, numbers: list[int]) -> bool:
    """Give pages ``numbers`` (from 1) of ``pdf`` the content, resources and links of ``partial``'s
    pages, in order, keeping the page objects (bookmarks and named destinations point at them).
    Written atomically; ``False`` when the PDFs do not match (then ``pdf`` is untouched)."""
    import pikepdf

    with pikepdf.open(pdf) as whole, pikepdf.open(partial) as part:
        if len(part.pages) != len(numbers) or max(numbers) > len(whole.pages):
            return False
        for number, new in zip(numbers, part.pages, strict=True):
            old = whole.pages[number - 1].obj
            for key in ("/Contents", "/Resources", "/Annots", "/MediaBox"):
                if key in new.obj:
                    value = new.obj[key]
                    old[key] = whole.copy_foreign(value if value.is_indirect else part.make_indirect(value))
                elif key in old:
                    del old[key]
        staged = pdf.with_name(f".{pdf.name}.partial")
        try:
            whole.save(staged, deterministic_id=True)
        except BaseException:
            staged.unlink(missing_ok=True)  # half a PDF is never left beside the deck's
            raise
    os.replace(staged, pdf)
    return True
