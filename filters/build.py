"""Deck → PDF: pandoc reads the deck, our filter runs, pandoc writes ``build/<deck>.tex``, latexmk
makes the PDF.

The ``.tex`` is rewritten only when its text changed, and latexmk decides which LaTeX passes the
change really needs: an edit of one sentence costs one pass, an unchanged deck none.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from filters.cache import pandoc_version, write_atomic
from filters.errors import PREFIX


class BuildError(RuntimeError):
    """pandoc or LaTeX failed; the message holds what they said. ``reported``: the filter has
    already printed the reason on stderr."""

    def __init__(self, message: str, *, reported: bool = False):
        super().__init__(message)
        self.reported = reported


def pandoc_path() -> str:
    """The pandoc shipped in ``pypandoc-binary`` (pandoc 3.x) — never whichever pandoc is on PATH."""
    import pypandoc

    return pypandoc.get_pandoc_path()


def filter_command() -> str:
    """The filter executable beside this Python (the ``attnslides-filter`` console script)."""
    script = Path(sys.executable).with_name("attnslides-filter")
    if script.exists():
        return str(script)
    found = shutil.which("attnslides-filter")
    if not found:
        raise BuildError("the attnslides-filter command is not installed; run `make setup`")
    return found


def _pandoc(args: list[str], *, stdin: str | None = None) -> str:
    done = subprocess.run([pandoc_path(), *args], input=stdin, capture_output=True, text=True)
    sys.stderr.write(done.stderr)  # pandoc's warnings
    if done.returncode != 0:
        raise BuildError(f"pandoc {' '.join(args)} failed (exit {done.returncode})")
    return done.stdout


def to_tex(deck: Path, tex: Path, *, to: str = "beamer", device: str | None = None, execute: bool = True) -> bool:
    """Read ``deck`` with pandoc, run the filter, write ``tex`` with pandoc (only if it changed).

    The three stages run one after another, as ``pandoc --filter`` would run them, but without a
    pandoc waiting in memory while the figures are drawn: a cold build's peak memory is the
    filter's alone. The filter's stderr (progress, errors) reaches the terminal as it happens.

    Returns:
        True when the output changed.

    Raises:
        BuildError: when pandoc or the filter fails (the filter has then printed which slide,
            block and key are at fault).
    """
    env = dict(os.environ, ATTNSLIDES_DECK=str(deck), ATTNSLIDES_OUTPUT_DIR=str(tex.parent),
               PANDOC_VERSION=pandoc_version())
    if device:
        env["ATTNSLIDES_DEVICE"] = device
    if not execute:
        env["ATTNSLIDES_EXECUTE"] = "0"
    ast = _pandoc([str(deck), "--to", "json"])
    done = subprocess.run([filter_command(), to], input=ast, stdout=subprocess.PIPE, text=True, env=env)
    if done.returncode != 0:
        raise BuildError(f"{deck} was not built", reported=True)
    output = _pandoc(["--from", "json", "--standalone", "--to", to]
                     + ([] if to in ("beamer", "latex") else ["--mathjax"]), stdin=done.stdout)
    if tex.is_file() and tex.read_text() == output:
        return False
    write_atomic(tex, output.encode())
    return True


def to_pdf(tex: Path) -> Path:
    """latexmk ``tex`` with pdflatex, in the ``.tex``'s own folder (figure paths are relative to it).

    latexmk reruns only what changed since its last *successful* run, as its ``.fdb_latexmk``
    records it; after a failed or interrupted run that record is deleted, and a PDF older than its
    ``.tex`` forces a full run, so a later build never trusts a run that did not finish.

    Raises:
        BuildError: with the end of LaTeX's log when it fails.
    """
    out_dir, pdf = tex.parent, tex.with_suffix(".pdf")
    record = tex.with_suffix(".fdb_latexmk")
    stale = not pdf.exists() or pdf.stat().st_mtime < tex.stat().st_mtime
    command = ["latexmk", "-pdf", "-cd", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error",
               *(["-g"] if stale else []), str(tex)]
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    except BaseException:
        record.unlink(missing_ok=True)
        raise
    if done.returncode != 0:
        record.unlink(missing_ok=True)
        log = out_dir / (tex.stem + ".log")
        tail = log.read_text(errors="replace").splitlines()[-25:] if log.exists() else done.stdout.splitlines()[-25:]
        raise BuildError(f"LaTeX failed on {tex}:\n" + "\n".join(tail))
    return pdf


def build(deck: Path, out_dir: Path = Path("build"), *, to: str = "beamer", device: str | None = None,
          execute: bool = True) -> Path:
    """Build one deck: ``slides/x.md`` → ``build/x.pdf`` (Beamer) or ``build/x.html`` (reveal.js)."""
    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    if to in ("beamer", "latex"):
        tex = out_dir / (deck.stem + ".tex")
        to_tex(deck, tex, to=to, device=device, execute=execute)
        result = to_pdf(tex)
    else:
        result = out_dir / (deck.stem + ".html")
        to_tex(deck, result, to=to, device=device, execute=execute)
    print(f"{PREFIX} {result} ({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return result
