"""One LaTeX pass, run safely: in a process group of its own, with a time limit, a word now and then
on a long run, and what it read recorded (``-recorder``) so that the next build can tell whether
anything changed."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from filters.errors import PREFIX
from filters.util.files import file_sha256
from filters.util.processes import bounded

# A pass that takes longer than this is stuck (a \loop in a caption, a macro calling itself).
LATEX_TIME_LIMIT_S = 300.0


STILL_S = 15.0  # a LaTeX run longer than this says it is still running, every STILL_S


MAX_PASSES = 5  # as latexmk: references that still move after five passes never settle


# What one pass leaves for the next; cut short by a killed pass, they break every later one
# ("File ended while scanning use of \@newl@bel").
HANDED_ON = (".aux", ".nav", ".snm", ".toc", ".out")


AUXILIARIES = (*HANDED_ON, ".vrb", ".fls", ".passes.json")


class LatexTimeout(RuntimeError):
    """A LaTeX pass ran past :data:`LATEX_TIME_LIMIT_S` and was stopped."""


def digest(path: Path) -> str | None:
    """A file's SHA-256, or ``None`` when it is not there."""
    try:
        return file_sha256(path)
    except OSError:
        return None


def start(command: list[str], cwd: Path, env: dict, *, stdin=None) -> subprocess.Popen:
    """A LaTeX process: in a process group of its own, dying with the build, under
    :data:`filters.util.processes.CHILD_MEMORY_BYTES` of address space."""
    return subprocess.Popen(command, cwd=cwd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", env=env, start_new_session=True, preexec_fn=bounded())


def run_pass(command: list[str], cwd: Path, env: dict, *, ahead: subprocess.Popen | None = None
              ) -> subprocess.CompletedProcess:
    """One LaTeX process, in a process group of its own, at most :data:`LATEX_TIME_LIMIT_S`; or
    ``ahead``, the same command started earlier without its file, which it is now given."""
    process = ahead or start(command, cwd, env)
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


def read_inputs(tex: Path) -> dict[str, str | None]:
    """What the last pass read from the project (``-recorder``'s ``.fls``): figures, pictures,
    included files; TeX's own trees and the files passes hand on are left out."""
    fls = tex.with_suffix(".fls")
    names = set()
    with contextlib.suppress(OSError):
        for line in fls.read_text(errors="replace").splitlines():
            if line.startswith("INPUT "):
                names.add(line[6:])
    skip = {tex.with_suffix(s).name for s in (*HANDED_ON, ".vrb", ".tex")}
    inputs = {}
    for name in sorted(names):
        path = Path(name) if Path(name).is_absolute() else tex.parent / name
        if path.name in skip or path.suffix == ".fmt":
            continue
        if Path(name).is_absolute() and not path.resolve().is_relative_to(Path.cwd().resolve()):
            continue  # TeX Live's own files (/usr/share/...): not the deck's
        inputs[name] = digest(path)
    return inputs


# Signals by which TeX itself dies (pdfTeX segfaults on some pgf shadings restored from a format);
# SIGKILL, SIGTERM, SIGINT, SIGHUP come from outside (the out-of-memory killer, a lecturer) and say
# nothing of the format.
CRASH_SIGNALS = {getattr(signal, name) for name in ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT") if hasattr(signal, name)}


# TeX's own error: "! …" or, with -file-line-error, "./deck.vrb:9: …" (any file TeX was reading).
_TEX_ERROR = re.compile(r"^(?:!|[^\s:]+\.\w+:\d+: )", re.M)


def tex_error(text: str) -> bool:
    """Whether LaTeX's log or output ``text`` has an error of TeX's own."""
    return bool(_TEX_ERROR.search(text))


def ended_by(done: subprocess.CompletedProcess) -> int | None:
    """The signal a pass died of (also when a shell reported it as 128 + its number), else ``None``."""
    if done.returncode < 0:
        return -done.returncode
    return done.returncode - 128 if 128 < done.returncode < 160 else None


def crashed(done: subprocess.CompletedProcess, log: Path) -> bool:
    """Whether TeX itself died in a failed pass: by a crash signal (SIGSEGV …), or an exit without
    any error of TeX's own in its log or output (an error in the ``.tex``, the ``.vrb`` of a frame
    with code, an included file or a package is the deck's, not a crash). A pass killed from outside
    (SIGKILL, SIGTERM …) did not crash: that says nothing of what it ran."""
    if done.returncode == 0:
        return False
    signal_number = ended_by(done)
    if signal_number is not None:
        return signal_number in CRASH_SIGNALS
    try:
        written = log.read_text(errors="replace")
    except OSError:
        written = ""
    return not (tex_error(written) or tex_error(done.stdout or ""))


def whole_pdf(path: Path) -> str | None:
    """The SHA-256 of the PDF at ``path`` when it is whole (it starts with ``%PDF-`` and its last
    kilobyte has the ``%%EOF`` a PDF ends with), else ``None`` (missing, cut short, not a PDF)."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if not data.startswith(b"%PDF-") or b"%%EOF" not in data[-1024:]:
        return None
    return hashlib.sha256(data).hexdigest()


def forget_auxiliaries(tex: Path) -> None:
    """Delete what an unfinished or failed run left beside ``tex`` (not its log, which says why)."""
    for suffix in AUXILIARIES:
        tex.with_suffix(suffix).unlink(missing_ok=True)


def command(engine: str, fmt: str | None) -> list[str]:
    return [engine, "-interaction=nonstopmode", "-halt-on-error", "-file-line-error", "-recorder",
            *([f"-fmt={fmt}"] if fmt else [])]
