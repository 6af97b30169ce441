"""LaTeX, run as a rebuild wants it: as few passes as the change needs, with the preamble
precompiled, safely.

* **Passes.** A pass is run again only while the files one pass hands to the next (``.aux``,
  ``.nav``, ``.snm``, ``.toc``, ``.out``) still change, at most :data:`MAX_PASSES`; a ``.tex`` whose
  text and every file LaTeX read last time (figures, the lecturer's pictures, as ``-recorder``
  lists them) are unchanged costs no pass at all. This is latexmk's rule, decided here without its
  Perl process and its bookkeeping (a fifth of a warm rebuild, measured).
* **A precompiled preamble.** A pdfLaTeX deck's preamble (all before ``\\begin{document}``: Beamer,
  its theme, fonts, :file:`preamble.tex`) is dumped once into a format with ``mylatexformat``
  (TeX Live ships it) and every pass starts from it: about a third of a pass is loading that
  preamble. The format is named by a hash of the preamble's text and of the TeX installation, kept
  in ``<build>/formats/``, and made again only when either changes. When the dump fails the deck is
  built the plain way, and the build says so once. LuaLaTeX decks are built the plain way (fonts
  loaded by ``fontspec`` cannot be dumped).
* **Safe.** No shell escape; kpathsea's paranoid mode (no absolute paths, no ``..``, no dot files)
  for reading and writing; a fixed date from ``SOURCE_DATE_EPOCH``; a time limit per pass; each
  pass in a process group of its own, killed whole on a timeout or an interruption and with the
  build (``PR_SET_PDEATHSIG``); the files of a pass that was killed or failed are deleted, so a later
  build never reads half a ``.aux``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from filters.cache import file_sha256, project_root, write_atomic
from filters.errors import PREFIX
from filters.processes import die_with_parent

# A pass that takes longer than this is stuck (a \loop in a caption, a macro calling itself).
LATEX_TIME_LIMIT_S = 300.0
STILL_S = 15.0  # a LaTeX run longer than this says it is still running, every STILL_S
MAX_PASSES = 5  # as latexmk: references that still move after five passes never settle
FORMATS_KEPT = 8  # precompiled preambles kept in <build>/formats/ (about 7 MB each)
# What one pass leaves for the next; cut short by a killed pass, they break every later one
# ("File ended while scanning use of \@newl@bel").
_HANDED_ON = (".aux", ".nav", ".snm", ".toc", ".out")
_AUXILIARIES = (*_HANDED_ON, ".vrb", ".fls", ".passes.json")


class LatexTimeout(RuntimeError):
    """A LaTeX pass ran past :data:`LATEX_TIME_LIMIT_S` and was stopped."""


def source_date(deck: Path | None) -> int:
    """The date a deck's PDF carries (``SOURCE_DATE_EPOCH``): its last commit's, so that two clean
    builds of one commit give the same bytes on any machine; else the day of the deck file's
    modification time (midnight, UTC)."""
    if deck is None:
        return 0
    try:
        done = subprocess.run(["git", "log", "-1", "--format=%ct", "--", Path(deck).name], cwd=Path(deck).parent,
                              capture_output=True, text=True, timeout=10)
        if done.returncode == 0 and done.stdout.strip().isdigit():
            return int(done.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    try:  # the day only: every save changes the time, and a date that moved would change every page
        return int(Path(deck).stat().st_mtime) // 86400 * 86400
    except OSError:
        return 0


# A watch fixes each deck's date when it starts (its file's time changes with every save), so that
# the LaTeX started ahead for the next save has the environment that save will want.
pinned_dates: dict[str, int] = {}


SANDBOX = Path(__file__).with_name("sandbox.lua")


def latex_env(deck: Path | None, out: Path | None = None) -> dict[str, str]:
    """LaTeX's environment: no shell escape and no reading or writing files outside the build
    (kpathsea's paranoid mode: no absolute paths, no ``..``, no dot files), so a caption's
    ``\\input{/etc/passwd}`` reads nothing; a fixed date (:func:`source_date`); and the deck's folder
    and the current one on TeX's search path, for the lecturer's own pictures (``img/logo.png``)."""
    folders = [str(Path(deck).resolve().parent)] if deck else []
    date = pinned_dates.get(str(Path(deck).resolve())) if deck else None
    return dict(os.environ, shell_escape="f", openin_any="p", openout_any="p", FORCE_SOURCE_DATE="1",
                SOURCE_DATE_EPOCH=str(date if date is not None else source_date(deck)),
                # "" at the end: TeX's own trees after the deck's folder, this one and the project
                TEXINPUTS=os.pathsep.join([".", *folders, str(Path.cwd()), str(project_root()), ""]),
                # LuaLaTeX: Lua's own file access, limited the same way (filters/sandbox.lua)
                ATTNSLIDES_LUA_SANDBOX=str(SANDBOX),
                ATTNSLIDES_READ=os.pathsep.join([*folders, str(Path.cwd()), str(project_root())]),
                ATTNSLIDES_WRITE=str(Path.cwd() / "build") if out is None else str(Path(out).resolve()))


def _digest(path: Path) -> str | None:
    """A file's SHA-256, or ``None`` when it is not there."""
    try:
        return file_sha256(path)
    except OSError:
        return None


def _installation(engine: str, folder: Path) -> str:
    """What identifies the TeX installation a format is made for: the engine's own format file
    (remade by Debian's fmtutil whenever TeX Live's packages change), by path, size and time. Where
    that file is (``kpsewhich``'s answer) is remembered in ``folder``, which spares a process per build."""
    remembered = folder / f"{engine}.where"
    with contextlib.suppress(OSError):
        stat = os.stat(found := remembered.read_text())
        return f"{found}:{stat.st_size}:{stat.st_mtime_ns}"
    try:
        found = subprocess.run(["kpsewhich", f"-engine={ {'pdflatex': 'pdftex'}.get(engine, engine)}", f"{engine}.fmt"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
        stat = os.stat(found)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(remembered, found.encode())
    return f"{found}:{stat.st_size}:{stat.st_mtime_ns}"


def _start(command: list[str], cwd: Path, env: dict, *, stdin=None) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=cwd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", env=env, start_new_session=True, preexec_fn=die_with_parent)


def _run_pass(command: list[str], cwd: Path, env: dict, *, ahead: subprocess.Popen | None = None
              ) -> subprocess.CompletedProcess:
    """One LaTeX process, in a process group of its own, at most :data:`LATEX_TIME_LIMIT_S`; or
    ``ahead``, the same command started earlier without its file, which it is now given."""
    process = ahead or _start(command, cwd, env)
    started, given = time.monotonic(), f"{command[-1]}\n" if ahead else None
    try:
        while True:  # a word every STILL_S seconds on a long run, as for a long figure
            try:
                output, _ = process.communicate(input=given, timeout=min(STILL_S, LATEX_TIME_LIMIT_S))
                break
            except subprocess.TimeoutExpired:
                given = None
                elapsed = time.monotonic() - started
                if elapsed >= LATEX_TIME_LIMIT_S:
                    raise
                print(f"{PREFIX} still running LaTeX on {cwd / command[-1]} ({elapsed:.0f} s of at most "
                      f"{LATEX_TIME_LIMIT_S:g})", file=sys.stderr, flush=True)
    except BaseException as exc:  # a timeout, Ctrl-C, SIGTERM: stop LaTeX and whatever it started
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise LatexTimeout(f"LaTeX ran for more than {LATEX_TIME_LIMIT_S:g} s and was stopped: is there a loop in "
                               "the text (\\loop, a macro that calls itself)?") from None
        raise
    return subprocess.CompletedProcess(command, process.returncode, output, "")


def precompiled_preamble(tex: Path, text: str, engine: str, env: dict, *, name: str) -> str | None:
    """The format holding ``text``'s preamble, dumped now if it is not there yet, as ``-fmt``
    takes it (relative to ``tex``'s folder); ``None`` when the deck is run the plain way: a LuaLaTeX
    deck, no ``\\begin{document}``, or a preamble that could not be dumped (said once, on stderr,
    naming ``name``).

    Raises:
        LatexTimeout: when the dump runs past the time limit.
    """
    head, begins, _ = text.partition("\\begin{document}")
    if engine != "pdflatex" or not begins:
        return None
    folder = tex.parent / "formats"
    key = hashlib.sha256(f"{engine}\n{_installation(engine, folder)}\n{head}".encode()).hexdigest()[:20]
    fmt, failed = folder / f"{key}.fmt", folder / f"{key}.failed"
    if failed.is_file():  # the dump failed, or LaTeX could not run from it
        return None
    if fmt.is_file():
        os.utime(fmt)  # recently used: kept by the pruning below
        return f"formats/{key}"
    folder.mkdir(parents=True, exist_ok=True)
    job = f"{tex.stem}-preamble-{os.getpid()}"  # two builds dumping one preamble never share files
    done = _run_pass([engine, "-ini", "-interaction=nonstopmode", "-halt-on-error", f"-jobname={job}",
                      f"&{engine}", "mylatexformat.ltx", tex.name], tex.parent, env)
    dumped, log = tex.parent / f"{job}.fmt", tex.parent / f"{job}.log"
    try:
        if done.returncode != 0 or not dumped.is_file():
            reason = next((line[2:] for line in done.stdout.splitlines() if line.startswith("! ")), "see its log")
            failed.write_text(done.stdout)
            print(f"{PREFIX} {name}: its preamble could not be precompiled ({reason}); LaTeX loads it on every "
                  f"pass (the dump's output: {failed})", file=sys.stderr)
            return None
        os.replace(dumped, fmt)
    finally:
        dumped.unlink(missing_ok=True)
        log.unlink(missing_ok=True)
        tex.parent.joinpath(f"{job}.pdf").unlink(missing_ok=True)
    for old in sorted(folder.glob("*.fmt"), key=lambda p: p.stat().st_mtime, reverse=True)[FORMATS_KEPT:]:
        old.unlink(missing_ok=True)
    return f"formats/{key}"


def _read_inputs(tex: Path) -> dict[str, str | None]:
    """What the last pass read from the project (``-recorder``'s ``.fls``): figures, pictures,
    included files; TeX's own trees and the files passes hand on are left out."""
    fls = tex.with_suffix(".fls")
    names = set()
    with contextlib.suppress(OSError):
        for line in fls.read_text(errors="replace").splitlines():
            if line.startswith("INPUT "):
                names.add(line[6:])
    skip = {tex.with_suffix(s).name for s in (*_HANDED_ON, ".vrb", ".tex")}
    inputs = {}
    for name in sorted(names):
        path = Path(name) if Path(name).is_absolute() else tex.parent / name
        if path.name in skip or path.suffix == ".fmt":
            continue
        if Path(name).is_absolute() and not path.resolve().is_relative_to(Path.cwd().resolve()):
            continue  # TeX Live's own files (/usr/share/...): not the deck's
        inputs[name] = _digest(path)
    return inputs


def _crashed(done: subprocess.CompletedProcess, log: Path) -> bool:
    """Whether a pass ended without an error of TeX's own (a ``!`` line): killed by a signal, or
    cut short, as pdfTeX is when a precompiled preamble holds what it cannot restore."""
    if done.returncode < 0 or done.returncode >= 128:
        return True
    try:
        return not any(line.startswith("!") or ".tex:" in line for line in log.read_text(errors="replace").splitlines())
    except OSError:
        return True


def forget_auxiliaries(tex: Path) -> None:
    """Delete what an unfinished or failed run left beside ``tex`` (not its log, which says why)."""
    for suffix in _AUXILIARIES:
        tex.with_suffix(suffix).unlink(missing_ok=True)


# ---- only the frames that changed ----
# A one-word edit changes one frame; typesetting the other frames again is most of a pass (about
# 30 ms a page). When the deck's structure is as before (the same preamble, the same number of
# frames, nothing but blank lines between them, no sections), only the changed frames are typeset,
# in a document of their own that starts at their frame and page numbers and reads the deck's
# .aux/.nav (so "3 / 28", links and labels are as in the full run); their pages then replace the old
# pages' content in the PDF, page objects kept (so bookmarks and named links stay valid). Anything
# else (a page more or less, a label that moved, an error) falls back to the full passes.

_SECTIONING = re.compile(r"\\(?:section|subsection|part|appendix|againframe)\b|noframenumbering")
PARTIAL_SUFFIX = "-frames"  # the jobname of the document of changed frames: <deck>-frames.tex


def _layout(text: str) -> dict | None:
    """The frames of a Beamer ``.tex`` as the frame-level rebuild needs them: the preamble's
    hash and each frame's text; ``None`` when the body holds anything but frames and blank lines."""
    from filters import texlog

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


def _pages_of(tex: Path, layout: dict | None) -> dict:
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


def _changed_frames_only(tex: Path, deck_text: str, layout: dict, last: dict, record: dict, env: dict, *,
                         ahead: list) -> tuple[str, subprocess.CompletedProcess, str] | None:
    """Typeset only the frames whose text changed since the last run and put their pages in the
    PDF; ``None`` when this cannot stand for a full run (the caller then runs the passes).
    ``ahead``: ``[a LaTeX started ahead, or None]``, emptied (``[None]``) when its pass uses it."""
    hashes = [hashlib.sha256(f.encode()).hexdigest() for f in layout["frames"]]
    if (last.get("head") != layout["head"] or len(last.get("frames", [])) != len(hashes)
            or {k: last.get(k) for k in ("engine", "format", "date")} != {k: record[k] for k in ("engine", "format", "date")}
            or not all(_digest(tex.parent / n if not Path(n).is_absolute() else Path(n)) == d
                       for n, d in last["inputs"].items() if not n.endswith(".tex"))):
        return None
    changed = [k for k, (new, old) in enumerate(zip(hashes, last["frames"], strict=True)) if new != old]
    if not changed or len(changed) > max(1, len(hashes) // 3):
        return None
    if last.get("troubled", True):
        return None  # the full run's log says something is off a slide: it stays the log that is read
    pages = last["pages"]
    before, end = _counters(tex.with_suffix(".aux"))
    if any(k not in before and k != 0 for k in changed):
        return None  # a frame the full run kept no numbers for
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
    for suffix in _HANDED_ON:  # what the full run knows: totals, labels, the frames' pages
        if tex.with_suffix(suffix).exists():
            shutil.copy(tex.with_suffix(suffix), partial.with_suffix(suffix))
    started, ahead[0] = ahead[0], None
    done = _run_pass([*_command(record["engine"], record["format"]), partial.name], tex.parent, env,
                     ahead=started if started is not None and started.poll() is None else None)
    log = partial.with_suffix(".log").read_text(errors="replace") if partial.with_suffix(".log").exists() else ""
    if done.returncode != 0 or _troubled(partial.with_suffix(".log"), text):
        return None  # the full run says what is wrong (an error, a frame that overflows), in the deck's log
    new_pages = [(int(a), int(b)) for a, b in _FRAME_PAGES.findall(partial.with_suffix(".nav").read_text())]
    if [b - a for a, b in new_pages] != [pages[k][1] - pages[k][0] for k in changed]:
        return None  # a page more or less: every later page moves
    after = _counters(partial.with_suffix(".aux"), mark="after")[0]
    expected = {k: before.get(k + 1, end) for k in changed}  # what the next frame starts with, in the full run
    if [after.get(k + 1) for k in changed] != [expected[k] for k in changed]:
        return None  # a figure or footnote more or less: later numbers move
    labels = set(re.findall(r"^\\newlabel.*$", partial.with_suffix(".aux").read_text(), re.M))
    if not labels <= set(re.findall(r"^\\newlabel.*$", tex.with_suffix(".aux").read_text(), re.M)):
        return None  # a label that moved or is new: other frames may show it
    if not _replace_pages(tex.with_suffix(".pdf"), partial.with_suffix(".pdf"),
                          [n for k in changed for n in range(pages[k][0], pages[k][1] + 1)]):
        return None
    inputs = {**last["inputs"], **{n: d for n, d in _read_inputs(partial).items()
                                   if not Path(n).name.startswith(partial.stem)}}
    partial.with_suffix(".pdf").unlink(missing_ok=True)  # its pages are in the deck's PDF now
    write_atomic(tex.with_suffix(".passes.json"),
                 json.dumps({**last, **record, "inputs": inputs, "frames": hashes}, indent=1).encode())
    return log, done, text


def _troubled(log: Path, text: str) -> bool:
    """Whether ``log`` says something is off a slide (an overflow, a missing glyph), as
    :func:`filters.build.to_pdf` reads it."""
    from filters import texlog

    try:
        written = log.read_text(errors="replace")
    except OSError:
        return True
    return bool(texlog.overflows(written, text)) or bool(texlog.missing_characters(written, text))


_COUNTED = ("figure", "table", "footnote", "equation")  # numbered things a frame may hold (preamble.tex)
_COUNTERS = re.compile(r"^\\attnslidescounters\{(\w+)\}\{(\d+)\}\{(\d+)\}\{(\d+)\}\{(\d+)\}\{(\d+)\}", re.M)


def _counters(aux: Path, mark: str = "before") -> tuple[dict[int, tuple[int, ...]], tuple[int, ...] | None]:
    """The numbers :data:`_COUNTED` stood at, by frame number, as ``\\attnslidesmark{mark}`` wrote
    them in ``aux`` (filters/preamble.tex), and those at the end of the document."""
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
        whole.save(staged, deterministic_id=True)
    os.replace(staged, pdf)
    return True


def _command(engine: str, fmt: str | None) -> list[str]:
    return [engine, "-interaction=nonstopmode", "-halt-on-error", "-file-line-error", "-recorder",
            *([f"-fmt={fmt}"] if fmt else [])]


# LaTeX processes started ahead by a watch, by what they were started for: each has loaded its
# format and waits for the name of its file on its standard input (TeX's "**" prompt).
_AHEAD: dict[tuple, subprocess.Popen] = {}


def _ahead_key(tex: Path, command: list[str], env: dict) -> tuple:
    """What a LaTeX started ahead must have been started with (its command without the file)."""
    return str(tex.resolve()), tuple(command), env["SOURCE_DATE_EPOCH"], env["TEXINPUTS"]


def start_ahead(tex: Path, *, deck: Path | None = None) -> None:
    """Start the first pass of ``tex``'s next build now (``attnslides watch``, between saves): its
    format is loaded while the lecturer types, and :func:`run` hands it the file when the build
    comes. Nothing is started when the last run did not end well."""
    try:
        record = json.loads(tex.with_suffix(".passes.json").read_text())
    except (OSError, ValueError):
        return
    command, env = _command(record["engine"], record["format"]), latex_env(deck, tex.parent)
    key = _ahead_key(tex, command, env)
    for stale in [k for k in _AHEAD if k[0] == key[0] and k != key]:  # for an old preamble, an old date
        stop_ahead(stale)
    if key not in _AHEAD or _AHEAD[key].poll() is not None:
        stop_ahead(key)
        _AHEAD[key] = _start(command, tex.parent, env, stdin=subprocess.PIPE)


def stop_ahead(key: tuple | None = None) -> None:
    """Stop the LaTeX processes started ahead (``key``'s, or all)."""
    for k in [key] if key is not None else list(_AHEAD):
        process = _AHEAD.pop(k, None)
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            folder = Path(k[0]).parent  # the recorder's file of a LaTeX that never got its file name
            for left in [*folder.glob(f"*{process.pid}.fls"), *folder.glob(f"formats/*{process.pid}.fls")]:
                left.unlink(missing_ok=True)


def run(tex: Path, engine: str, *, deck: Path | None = None, fresh: bool = False
        ) -> tuple[str, subprocess.CompletedProcess, str]:
    """Make ``tex``'s PDF with ``engine`` (``pdflatex`` or ``lualatex``) in the ``.tex``'s folder;
    return LaTeX's log, how the last pass ended, and the text the log's line numbers refer to.

    No pass runs when the ``.tex`` and every file the last run read are as they were and that run
    ended well. When only some frames' text changed (:func:`_changed_frames_only`), only those are
    typeset and their pages replaced in the PDF. Otherwise passes run until what they hand on
    settles. A marker file lives while LaTeX runs: found at the start, it says a run was killed,
    and its files are deleted first.

    Raises:
        LatexTimeout: when a pass runs past :data:`LATEX_TIME_LIMIT_S`.
    """
    record_file, running, pdf = tex.with_suffix(".passes.json"), tex.with_suffix(".running"), tex.with_suffix(".pdf")
    log_file = tex.with_suffix(".log")
    if running.exists() or fresh:
        forget_auxiliaries(tex)
    text = tex.read_text()
    env = latex_env(deck, tex.parent)
    running.touch()
    try:
        fmt = precompiled_preamble(tex, text, engine, env, name=str(deck or tex))
        record = {"engine": engine, "format": fmt, "tex": hashlib.sha256(text.encode()).hexdigest(),
                  "date": env["SOURCE_DATE_EPOCH"]}
        last = None
        with contextlib.suppress(OSError, ValueError):
            last = json.loads(record_file.read_text())
            if (pdf.is_file() and log_file.is_file() and {k: last.get(k) for k in record} == record
                    and all(_digest(tex.parent / n if not Path(n).is_absolute() else Path(n)) == d
                            for n, d in last["inputs"].items())):
                running.unlink()
                return log_file.read_text(errors="replace"), subprocess.CompletedProcess([], 0, "", ""), text
        ahead = _AHEAD.pop(_ahead_key(tex, _command(engine, fmt), env), None)
        layout = _layout(text)
        if not fresh and layout is not None and last is not None:
            given = [ahead]  # taken by the frames' pass when it runs one; else kept for the full passes
            try:
                done = _changed_frames_only(tex, text, layout, last, record, env, ahead=given)
            except LatexTimeout:
                raise
            except Exception:  # (OSError, a PDF pikepdf cannot read …) the full passes will do
                done = None
            ahead = given[0]
            if done is not None:
                running.unlink(missing_ok=True)
                return done
        record_file.unlink(missing_ok=True)
        command = [*_command(engine, fmt), tex.name]
        for _ in range(MAX_PASSES):
            before = {s: _digest(tex.with_suffix(s)) for s in _HANDED_ON}
            done = _run_pass(command, tex.parent, env, ahead=ahead if ahead and ahead.poll() is None else None)
            ahead = None
            if done.returncode != 0 and fmt and _crashed(done, log_file):
                # TeX itself died on the precompiled preamble (pdfTeX segfaults on some pgf shadings
                # dumped into a format, e.g. the Warsaw theme): never again for this preamble.
                tex.parent.joinpath(f"{fmt}.failed").write_text(done.stdout)
                tex.parent.joinpath(f"{fmt}.fmt").unlink(missing_ok=True)
                print(f"{PREFIX} {deck or tex}: LaTeX could not run from its precompiled preamble (it ended by "
                      f"{'signal ' + str(-done.returncode) if done.returncode < 0 else 'no error of its own'}); "
                      "LaTeX loads the preamble on every pass", file=sys.stderr)
                forget_auxiliaries(tex)
                record["format"], fmt = None, None
                command = [*_command(engine, None), tex.name]
                continue
            if done.returncode != 0:
                forget_auxiliaries(tex)
                break
            if {s: _digest(tex.with_suffix(s)) for s in _HANDED_ON} == before:
                write_atomic(record_file, json.dumps({**record, "inputs": _read_inputs(tex), **_pages_of(tex, layout),
                                                      "troubled": layout is not None and _troubled(log_file, text)},
                                                     indent=1).encode())
                break
    except BaseException:
        record_file.unlink(missing_ok=True)  # the marker stays: the next run starts clean
        raise
    running.unlink(missing_ok=True)
    return (log_file.read_text(errors="replace") if log_file.exists() else ""), done, text


