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
  built the plain way, and the build says so once; when TeX dies running from the format (pdfTeX
  segfaults on some themes' shadings) and the plain run then ends well, likewise. Either is
  remembered (``<key>.failed``) only when it would happen again: an error of the deck's (in the
  ``.tex``, the ``.vrb`` of a frame with code, an included file) is reported as such, and a dump or
  pass killed from outside or short of disk leaves no mark, so no later build runs differently from
  a clean one. LuaLaTeX decks are built the plain way (fonts loaded by ``fontspec`` cannot be dumped).
* **Only the frames that changed**, when a change allows it (:mod:`filters.latex.frames`).
* **Safe.** No shell escape; kpathsea's paranoid mode (no absolute paths, no ``..``, no dot files)
  for reading and writing (:mod:`filters.latex.env`); a fixed date from ``SOURCE_DATE_EPOCH``; a
  time limit per pass; each pass in a process group of its own, killed whole on a timeout or an
  interruption and with the build (:mod:`filters.latex.passes`); the files of a pass that was
  killed or failed are deleted, so a later build never reads half a ``.aux``.
* **Trusted only when whole.** "Nothing changed" needs the PDF and log the last run wrote, by their
  SHA-256 (a PDF cut short, overwritten or deleted since is made again), and what a killed build
  left half-written is deleted first (:func:`clean_strays`).
* **Warm.** A :class:`Session` (held by ``attnslides watch``) keeps each deck's date fixed while it
  is watched and starts the next build's first pass ahead, between saves.
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

from filters.errors import PREFIX
from filters.latex import frames
from filters.latex.env import latex_env, source_date
from filters.latex.passes import (
    CRASH_SIGNALS,
    HANDED_ON,
    MAX_PASSES,
    LatexTimeout,
    command,
    crashed,
    digest,
    ended_by,
    forget_auxiliaries,
    read_inputs,
    run_pass,
    start,
    tex_error,
    whole_pdf,
)
from filters.util.files import write_atomic
from filters.util.processes import run_bounded

__all__ = ["LatexTimeout", "Session", "clean_strays", "precompiled_preamble", "typeset"]

FORMATS_KEPT = 8  # precompiled preambles kept in <build>/formats/ (about 7 MB each)


def _installation(engine: str, folder: Path) -> str:
    """What identifies the TeX installation a format is made for: the engine's own format file
    (remade by Debian's fmtutil whenever TeX Live's packages change), by path, size and time. Where
    that file is (``kpsewhich``'s answer) is remembered in ``folder``, which spares a process per build."""
    remembered = folder / f"{engine}.where"
    with contextlib.suppress(OSError):
        stat = os.stat(found := remembered.read_text())
        return f"{found}:{stat.st_size}:{stat.st_mtime_ns}"
    try:
        found = run_bounded(["kpsewhich", f"-engine={ {'pdflatex': 'pdftex'}.get(engine, engine)}", f"{engine}.fmt"],
                            timeout=30).stdout.strip()
        stat = os.stat(found)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(remembered, found.encode())
    return f"{found}:{stat.st_size}:{stat.st_mtime_ns}"


def precompiled_preamble(tex: Path, text: str, engine: str, env: dict, *, name: str) -> str | None:
    """The format holding ``text``'s preamble, dumped now if it is not there yet, as ``-fmt``
    takes it (relative to ``tex``'s folder); ``None`` when the deck is run the plain way: a LuaLaTeX
    deck, no ``\\begin{document}``, or a preamble that could not be dumped (said once, on stderr,
    naming ``name``).

    A format is named by the preamble's key (a hash of its text and of the TeX installation) and a
    hash of the project's files the dump read (a theme or package beside the deck), kept in
    ``formats/<key>.json``: when one of them changes, the preamble is dumped again under a new name
    (a failure too is tried again), and nothing built from the old one is trusted.

    Raises:
        LatexTimeout: when the dump runs past the time limit.
    """
    head, begins, _ = text.partition("\\begin{document}")
    if engine != "pdflatex" or not begins:
        return None
    folder = tex.parent / "formats"
    key = hashlib.sha256(f"{engine}\n{_installation(engine, folder)}\n{head}".encode()).hexdigest()[:20]
    known = _known(folder, key, tex.parent)
    if known is not None and (folder / f"{known}.failed").is_file():  # not dumped, or LaTeX died running from it
        return None
    if known is not None and (folder / f"{known}.fmt").is_file():
        os.utime(folder / f"{known}.fmt")  # recently used: kept by the pruning
        return f"formats/{known}"
    folder.mkdir(parents=True, exist_ok=True)
    return _dump(tex, engine, env, folder, key, name=name)


def _known(folder: Path, key: str, base: Path) -> str | None:
    """The name of ``key``'s last dump (its format, or its lasting failure), when every file of
    the project it read is as it was; else ``None``."""
    try:
        seen = json.loads((folder / f"{key}.json").read_text())
        if all(digest(base / n if not Path(n).is_absolute() else Path(n)) == d for n, d in seen["inputs"].items()):
            return str(seen["name"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return None


def _dump(tex: Path, engine: str, env: dict, folder: Path, key: str, *, name: str) -> str | None:
    """Dump ``tex``'s preamble into ``folder`` (see :func:`precompiled_preamble`); the format's name
    in ``-fmt``'s terms, or ``None`` when it failed (remembered only when it would fail again)."""
    job = f"{tex.stem}-preamble-{os.getpid()}"  # two builds dumping one preamble never share files
    done = run_pass([engine, "-ini", "-interaction=nonstopmode", "-halt-on-error", "-recorder", f"-jobname={job}",
                      f"&{engine}", "mylatexformat.ltx", tex.name], tex.parent, env)
    dumped = tex.parent / f"{job}.fmt"
    try:
        inputs = {n: d for n, d in read_inputs(tex.parent / f"{job}.tex").items() if Path(n).name != tex.name}
        named = f"{key}-{hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:8]}"
        if done.returncode != 0 or not dumped.is_file():
            failed = folder / f"{named}.failed" if _dump_fails_for_good(done, folder) else None
            with contextlib.suppress(OSError):  # not remembered, then: tried again next time
                if failed is not None:
                    write_atomic(failed, done.stdout.encode())
                    write_atomic(folder / f"{key}.json", json.dumps({"name": named, "inputs": inputs}).encode())
            _say_not_dumped(done, name, failed)
            return None
        os.replace(dumped, folder / f"{named}.fmt")
        write_atomic(folder / f"{key}.json", json.dumps({"name": named, "inputs": inputs}).encode())
    finally:
        for suffix in (".fmt", ".log", ".pdf", ".fls"):
            tex.parent.joinpath(f"{job}{suffix}").unlink(missing_ok=True)
    _prune(folder)
    return f"formats/{named}"


def _say_not_dumped(done: subprocess.CompletedProcess, name: str, failed: Path | None) -> None:
    """Say that ``name``'s preamble could not be dumped: for good (``failed``: where the dump's
    output is kept), or this time only."""
    reason = next((line[2:] for line in done.stdout.splitlines() if line.startswith("! ")), "see its log")
    if failed is not None:
        print(f"{PREFIX} {name}: its preamble could not be precompiled ({reason}); LaTeX loads it on every "
              f"pass (the dump's output: {failed})", file=sys.stderr)
        return
    signal_number = ended_by(done)
    print(f"{PREFIX} {name}: its preamble could not be precompiled this time ("
          f"{f'stopped by signal {signal_number}' if signal_number else reason}: a full disk, a killed "
          "process?); LaTeX loads it on every pass of this build", file=sys.stderr)


def _prune(folder: Path) -> None:
    """Keep the :data:`FORMATS_KEPT` formats (and failures) used last, and the records of those."""
    for pattern in ("*.fmt", "*.failed"):
        for old in sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)[FORMATS_KEPT:]:
            old.unlink(missing_ok=True)
    kept = {p.stem.rsplit("-", 1)[0] for pattern in ("*.fmt", "*.failed") for p in folder.glob(pattern)}
    for record in folder.glob("*.json"):
        if record.stem not in kept:
            record.unlink(missing_ok=True)


# A dump that could not write its format: the disk (or quota) is full, which says nothing of the preamble.
_WRITE_FAILED = re.compile(r"^! (?:Could not write|I can't write on file)|No space left|Disk quota", re.M)


MIN_FREE_BYTES = 64 << 20  # less free space than this where formats are kept: a failed dump may be the disk's fault


def _dump_fails_for_good(done: subprocess.CompletedProcess, folder: Path) -> bool:
    """Whether a failed dump would fail again for the same preamble, and is worth remembering: TeX
    stopped at an error of its own (an undumpable preamble, an error in it), or crashed. Not when it
    was killed from outside, could not write the format (a full disk) or said nothing."""
    signal_number = ended_by(done)
    if signal_number is not None:
        return signal_number in CRASH_SIGNALS
    if _WRITE_FAILED.search(done.stdout or ""):
        return False
    with contextlib.suppress(OSError):
        if shutil.disk_usage(folder).free < MIN_FREE_BYTES:
            return False
    return tex_error(done.stdout or "")


class Session:
    """What a watch keeps between its builds: each deck's date, fixed when the watch starts (its
    file's time changes with every save), and LaTeX processes started ahead, by what they were
    started for: each has loaded its format and waits for the name of its file on its standard
    input (TeX's "**" prompt). Its owner calls :meth:`stop` when it ends."""

    def __init__(self):
        self.dates: dict[str, int] = {}
        self.ahead: dict[tuple, subprocess.Popen] = {}

    def pin_date(self, deck: Path) -> None:
        """Fix ``deck``'s date (``SOURCE_DATE_EPOCH``) for the rest of the session."""
        self.dates[str(Path(deck).resolve())] = source_date(deck)

    def env(self, deck: Path | None, out: Path) -> dict[str, str]:
        """LaTeX's environment for ``deck``'s ``.tex`` in ``out``, with its pinned date."""
        return latex_env(deck, out, date=self.dates.get(str(Path(deck).resolve())) if deck else None)

    def start_ahead(self, tex: Path, *, deck: Path | None = None) -> None:
        """Start the first pass of ``tex``'s next build now (between saves): its format is loaded
        while the lecturer types, and :func:`typeset` hands it the file when the build comes.
        Nothing is started when the last run did not end well."""
        try:
            record = json.loads(tex.with_suffix(".passes.json").read_text())
        except (OSError, ValueError):
            return
        line, env = command(record["engine"], record["format"]), self.env(deck, tex.parent)
        key = _ahead_key(tex, line, env)
        for stale in [k for k in self.ahead if k[0] == key[0] and k != key]:  # an old preamble, an old date
            self.stop(stale)
        if key not in self.ahead or self.ahead[key].poll() is not None:
            self.stop(key)
            self.ahead[key] = start(line, tex.parent, env, stdin=subprocess.PIPE)

    def take(self, tex: Path, line: list[str], env: dict) -> subprocess.Popen | None:
        """The LaTeX started ahead for this command, if there is one (it is then the caller's)."""
        return self.ahead.pop(_ahead_key(tex, line, env), None)

    def stop(self, key: tuple | None = None) -> None:
        """Stop the LaTeX processes started ahead (``key``'s, or all)."""
        for k in [key] if key is not None else list(self.ahead):
            process = self.ahead.pop(k, None)
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                folder = Path(k[0]).parent  # the recorder's file of a LaTeX that never got its file name
                for left in [*folder.glob(f"*{process.pid}.fls"), *folder.glob(f"formats/*{process.pid}.fls")]:
                    left.unlink(missing_ok=True)


def _ahead_key(tex: Path, line: list[str], env: dict) -> tuple:
    """What a LaTeX started ahead must have been started with (its command without the file)."""
    return str(tex.resolve()), tuple(line), env["SOURCE_DATE_EPOCH"], env["TEXINPUTS"]


def typeset(tex: Path, engine: str, *, deck: Path | None = None, fresh: bool = False,
            session: Session | None = None) -> tuple[str, subprocess.CompletedProcess, str]:
    """Make ``tex``'s PDF with ``engine`` (``pdflatex`` or ``lualatex``) in the ``.tex``'s folder;
    return LaTeX's log, how the last pass ended, and the text the log's line numbers refer to.

    No pass runs when the ``.tex`` and every file the last run read are as they were and that run
    ended well. When only some frames' text changed (:func:`filters.latex.frames.changed_frames_only`),
    only those are typeset and their pages replaced in the PDF. Otherwise passes run until what they
    hand on settles. A marker file lives while LaTeX runs: found at the start, it says a run was
    killed, and its files are deleted first. ``session``: a watch's :class:`Session`.

    Raises:
        LatexTimeout: when a pass runs past :data:`filters.latex.passes.LATEX_TIME_LIMIT_S`.
    """
    session = session or Session()
    record_file, running = tex.with_suffix(".passes.json"), tex.with_suffix(".running")
    clean_strays(tex.parent, tex.stem)
    if running.exists() or fresh:
        forget_auxiliaries(tex)
    text = tex.read_text()
    env = session.env(deck, tex.parent)
    running.touch()
    try:
        fmt = precompiled_preamble(tex, text, engine, env, name=str(deck or tex))
        record = {"engine": engine, "format": fmt, "tex": hashlib.sha256(text.encode()).hexdigest(),
                  "date": env["SOURCE_DATE_EPOCH"]}
        last, unchanged = _last_run(tex, record)
        if unchanged:
            running.unlink()
            return tex.with_suffix(".log").read_text(errors="replace"), subprocess.CompletedProcess([], 0, "", ""), text
        ahead = session.take(tex, command(engine, fmt), env)
        layout = frames.layout(text)
        if not fresh and layout is not None and last is not None:
            # the frames' pass takes the LaTeX started ahead when it runs one; else the full passes do
            done = _frames_only(tex, text, layout, last, record, env, ahead)
            if done is not None:
                running.unlink(missing_ok=True)
                return done
        record_file.unlink(missing_ok=True)
        done = _passes(tex, text, engine, fmt, env, record, layout, ahead, name=str(deck or tex))
    except BaseException:
        record_file.unlink(missing_ok=True)  # the marker stays: the next run starts clean
        raise
    running.unlink(missing_ok=True)
    log_file = tex.with_suffix(".log")
    return (log_file.read_text(errors="replace") if log_file.exists() else ""), done, text


STRAY_AGE_S = 3600.0  # a temporary file in formats/ (shared by every deck) older than this is no live build's


def clean_strays(folder: Path, stem: str) -> None:
    """Delete what a build of the deck whose outputs are named ``stem`` left half-written in
    ``folder`` when it was killed: the temporary files of :func:`filters.util.files.write_atomic`
    (``.deck.tex.k2j3h4g5``), a PDF whose pages were being replaced or a Word or PowerPoint file
    being written (``.deck.pdf.partial``), a preamble dump's files whose process is gone
    (``deck-preamble-<pid>.fmt``); and, in ``formats/``, temporary files an hour old. Only the
    deck's own, which its lock guards: other decks' builds share the folder."""
    names = "|".join(re.escape(f"{stem}{s}") for s in (".tex", ".pdf", ".passes.json", ".docx", ".pptx"))
    temporary = re.compile(rf"\.(?:{names})\.(?:[a-z0-9_]{{8}}|partial)")
    dump = re.compile(rf"{re.escape(stem)}-preamble-(\d+)\.(?:fmt|log|pdf)")
    with contextlib.suppress(OSError):
        for path in folder.iterdir():
            found = dump.fullmatch(path.name)
            if temporary.fullmatch(path.name) or (found and not _alive(int(found[1]))
                                                  and not path.with_suffix(".tex").exists()):
                path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        for path in (folder / "formats").glob(".*.*"):
            if re.fullmatch(r"\..+\.[a-z0-9_]{8}", path.name) and time.time() - path.stat().st_mtime > STRAY_AGE_S:
                path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` is running (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _last_run(tex: Path, record: dict) -> tuple[dict | None, bool]:
    """The record of the last run (``None`` when there is none), and whether it stands for this one:
    its PDF is there, whole and the very one it wrote (its SHA-256), its log too, it was made for the
    same text, engine, format and date, and every file it read is as it was (then no pass is needed).
    A PDF cut short, overwritten or deleted since is made again."""
    pdf, log_file = tex.with_suffix(".pdf"), tex.with_suffix(".log")
    try:
        last = json.loads(tex.with_suffix(".passes.json").read_text())
    except (OSError, ValueError):
        return None, False
    with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
        if (last.get("pdf") is not None and whole_pdf(pdf) == last["pdf"] and digest(log_file) == last.get("log")
                and {k: last.get(k) for k in record} == record
                and all(digest(tex.parent / n if not Path(n).is_absolute() else Path(n)) == d
                        for n, d in last["inputs"].items())):
            return last, True
    return last, False


def _frames_only(tex: Path, text: str, layout: dict, last: dict, record: dict, env: dict,
                 ahead: subprocess.Popen | None):
    """:func:`filters.latex.frames.changed_frames_only`, or ``None`` when it fails for any reason but
    a timeout (an OSError, a PDF pikepdf cannot read …): the full passes will do. Its document's PDF
    is not kept (its pages are in the deck's, or unused)."""
    try:
        return frames.changed_frames_only(tex, text, layout, last, record, env, ahead=ahead)
    except LatexTimeout:
        raise
    except Exception:  # noqa: BLE001 — any failure here only means the full passes run
        return None
    finally:
        tex.with_name(f"{tex.stem}{frames.PARTIAL_SUFFIX}.pdf").unlink(missing_ok=True)


def _passes(tex: Path, text: str, engine: str, fmt: str | None, env: dict, record: dict, layout: dict | None,
            ahead: subprocess.Popen | None, *, name: str) -> subprocess.CompletedProcess:
    """The full passes: run until what one pass hands the next settles (at most
    :data:`filters.latex.passes.MAX_PASSES`), then record what they read and the PDF and log they
    wrote. A pass that TeX itself does not survive from the precompiled preamble is run again the
    plain way; that preamble is never precompiled again only when the plain run then ends well (so
    the format, not the deck, was at fault: an error of the deck's is reported as it is, and its
    next build starts from the format as a clean one would)."""
    log_file, record_file = tex.with_suffix(".log"), tex.with_suffix(".passes.json")
    line = [*command(engine, fmt), tex.name]
    suspect = None  # (the format, the pass that died on it)
    for _ in range(MAX_PASSES):
        before = {s: digest(tex.with_suffix(s)) for s in HANDED_ON}
        done = run_pass(line, tex.parent, env, ahead=ahead if ahead and ahead.poll() is None else None)
        ahead = None
        if done.returncode != 0 and fmt and crashed(done, log_file):
            if _UNREADABLE_FORMAT.search(done.stdout or ""):  # cut short or stale: dumped again next time
                tex.parent.joinpath(f"{fmt}.fmt").unlink(missing_ok=True)
            else:
                suspect = (fmt, done)
            forget_auxiliaries(tex)
            record["format"], fmt = None, None
            line = [*command(engine, None), tex.name]
            continue
        if done.returncode != 0:
            forget_auxiliaries(tex)
            break
        if {s: digest(tex.with_suffix(s)) for s in HANDED_ON} == before:
            write_atomic(record_file, json.dumps({**record, "inputs": read_inputs(tex), **frames.pages_of(tex, layout),
                                                  "troubled": layout is not None and frames.troubled(log_file, text),
                                                  "pdf": whole_pdf(tex.with_suffix(".pdf")), "log": digest(log_file)},
                                                 indent=1).encode())
            break
    if suspect is not None and done.returncode == 0:
        _format_failed(tex, *suspect, name=name)
    return done


# pdfTeX's words for a format file it cannot load (cut short, or dumped by another version).
_UNREADABLE_FORMAT = re.compile(r"Fatal format file error|was written by|I can't find the format file")


def _format_failed(tex: Path, fmt: str, done: subprocess.CompletedProcess, *, name: str) -> None:
    """Remember that TeX dies running from the format ``fmt`` (pdfTeX segfaults on some pgf
    shadings dumped into a format, e.g. the Warsaw theme): the format is deleted and this preamble is
    not precompiled again, until anything its name is made of (the preamble, the TeX installation)
    changes. Said once."""
    with contextlib.suppress(OSError):  # a full disk: tried again next time
        write_atomic(tex.parent / f"{fmt}.failed", (done.stdout or "").encode())
    tex.parent.joinpath(f"{fmt}.fmt").unlink(missing_ok=True)
    signal_number = ended_by(done)
    print(f"{PREFIX} {name}: LaTeX could not run from its precompiled preamble (it ended by "
          f"{f'signal {signal_number}' if signal_number else 'no error of its own'}, and runs without it); "
          "LaTeX loads the preamble on every pass", file=sys.stderr)
