"""Deck → PDF: pandoc (with our filter) writes ``build/<deck>.tex``, latexmk makes the PDF.

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

from filters.cache import write_atomic
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


def to_tex(deck: Path, tex: Path, *, to: str = "beamer", device: str | None = None) -> bool:
    """Run pandoc with the filter on ``deck`` and write ``tex`` (only if it changed).

    Returns:
        True when the ``.tex`` changed.

    Raises:
        BuildError: with the filter's message (which names the slide, block and key) on failure.
    """
    env = dict(os.environ, ATTNSLIDES_DECK=str(deck), ATTNSLIDES_OUTPUT_DIR=str(tex.parent))
    if device:
        env["ATTNSLIDES_DEVICE"] = device
    command = [pandoc_path(), str(deck), "--standalone", "--to", to, "--filter", filter_command()]
    if to not in ("beamer", "latex"):
        command.append("--mathjax")
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    ours = [line for line in done.stderr.splitlines() if line.startswith(PREFIX)]
    if done.returncode != 0 and ours:
        # The filter said what is wrong; pandoc's "Error running filter" lines add nothing.
        sys.stderr.write("\n".join(ours) + "\n")
        raise BuildError(f"{deck} was not built", reported=True)
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        raise BuildError(f"pandoc failed on {deck} (exit {done.returncode})")
    if tex.is_file() and tex.read_text() == done.stdout:
        return False
    write_atomic(tex, done.stdout.encode())
    return True


def to_pdf(tex: Path) -> Path:
    """latexmk ``tex`` with pdflatex, in the ``.tex``'s own folder (figure paths are relative to it).

    Raises:
        BuildError: with the end of LaTeX's log when it fails.
    """
    command = ["latexmk", "-pdf", "-cd", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error", str(tex)]
    done = subprocess.run(command, capture_output=True, text=True)
    out_dir = tex.parent
    if done.returncode != 0:
        log = out_dir / (tex.stem + ".log")
        tail = log.read_text(errors="replace").splitlines()[-25:] if log.exists() else done.stdout.splitlines()[-25:]
        raise BuildError(f"LaTeX failed on {tex}:\n" + "\n".join(tail))
    return out_dir / (tex.stem + ".pdf")


def build(deck: Path, out_dir: Path = Path("build"), *, to: str = "beamer", device: str | None = None) -> Path:
    """Build one deck: ``slides/x.md`` → ``build/x.pdf`` (Beamer) or ``build/x.html`` (reveal.js)."""
    start = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    if to in ("beamer", "latex"):
        tex = out_dir / (deck.stem + ".tex")
        to_tex(deck, tex, to=to, device=device)
        result = to_pdf(tex)
    else:
        result = out_dir / (deck.stem + ".html")
        to_tex(deck, result, to=to, device=device)
    print(f"{PREFIX} {result} ({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return result
