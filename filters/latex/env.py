"""LaTeX's environment: safe (no shell escape, kpathsea's paranoid mode, Lua sandboxed), dated
reproducibly, and able to find the lecturer's pictures."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from filters.util.confine import deck_project
from filters.util.files import project_root
from filters.util.processes import run_bounded


def source_date(deck: Path | None) -> int:
    """The date a deck's PDF carries (``SOURCE_DATE_EPOCH``): its last commit's, so that two clean
    builds of one commit give the same bytes on any machine; else the day of the deck file's
    modification time (midnight, UTC)."""
    if deck is None:
        return 0
    try:
        done = run_bounded(["git", "log", "-1", "--format=%ct", "--", Path(deck).name], cwd=Path(deck).parent,
                           timeout=10)
        if done.returncode == 0 and done.stdout.strip().isdigit():
            return int(done.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    try:  # the day only: every save changes the time, and a date that moved would change every page
        return int(Path(deck).stat().st_mtime) // 86400 * 86400
    except OSError:
        return 0


SANDBOX = Path(__file__).with_name("sandbox.lua")


def readable_folders(deck: Path | None) -> list[str]:
    """The folders LaTeX may read the lecturer's files from, besides the output folder and TeX's own
    trees: the deck's folder, the folder the build runs from when it lies in the deck's project, and
    that project (:func:`filters.util.confine.deck_project`), the one boundary pandoc keeps too. So a
    deck built from another folder reads nothing there. Without a deck (``pandoc -F``): the current
    folder and its project (:func:`filters.util.files.project_root`)."""
    here = Path.cwd().resolve()
    if deck is None:
        return [str(here), str(project_root())]
    project = deck_project(Path(deck))
    return [str(Path(deck).resolve().parent), *([str(here)] if here.is_relative_to(project) else []), str(project)]


def latex_env(deck: Path | None, out: Path | None = None, *, date: int | None = None) -> dict[str, str]:
    """LaTeX's environment: no shell escape and no reading or writing files outside the build
    (kpathsea's paranoid mode: no absolute paths, no ``..``, no dot files), so a caption's
    ``\\input{/etc/passwd}`` reads nothing; a fixed date (``date``, else :func:`source_date`); and the
    folders the lecturer's own pictures (``img/logo.png``) may be in on TeX's search path
    (:func:`readable_folders`); the log's lines unwrapped."""
    folders = readable_folders(deck)
    return dict(os.environ, shell_escape="f", openin_any="p", openout_any="p", FORCE_SOURCE_DATE="1",
                # the log's lines whole (TeX wraps them at 79 characters): an error's message is read back
                max_print_line="10000",
                SOURCE_DATE_EPOCH=str(date if date is not None else source_date(deck)),
                # "" at the end: TeX's own trees after the deck's folder, this one and the project
                TEXINPUTS=os.pathsep.join([".", *folders, ""]),
                # LuaLaTeX: Lua's own file access, limited the same way (sandbox.lua)
                ATTNSLIDES_LUA_SANDBOX=str(SANDBOX),
                ATTNSLIDES_READ=os.pathsep.join(folders),
                ATTNSLIDES_WRITE=str(Path.cwd() / "build") if out is None else str(Path(out).resolve()))
