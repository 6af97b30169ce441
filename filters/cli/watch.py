"""``attnslides watch``: rebuild decks on every save, in one warm process.

Python, the filter, the kinds' modules and the figure workers' warm parent stay loaded between
builds, so a rebuild costs pandoc, the filter's pass, the figures that changed and LaTeX's
passes (from the precompiled preamble, in a :class:`filters.latex.runner.Session` this watch holds:
each deck's date fixed, the next pass started ahead between saves). Files are watched with
``watchfiles`` (inotify on Linux), not by polling. An error is printed, and the next save is waited
for; Ctrl-C or SIGTERM stops the watch, and the workers and LaTeX with it.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

from filters.errors import PREFIX
from filters.util.processes import unmarked_env

STEP_MS = 30  # a save is taken once the folder has been quiet this long (editors write in steps)


def _open_viewer(pdf: Path) -> None:
    """Open ``pdf`` in the desktop's viewer, when there is a desktop (said when there is none)."""
    opener = "open" if sys.platform == "darwin" else "xdg-open"
    desktop = sys.platform == "darwin" or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if not desktop or not shutil.which(opener):
        print(f"{PREFIX} --open: no desktop viewer here ({opener} and a display are needed); open {pdf} yourself",
              file=sys.stderr)
        return
    # the lecturer's viewer outlives the watch: not marked as the watch's (filters.util.processes)
    subprocess.Popen([opener, str(pdf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                     env=unmarked_env())


def _build_one(deck: Path, out_dir: Path, session, **options) -> Path | None:
    """Build ``deck``; on failure print why and return ``None`` (the watch goes on). Then start the
    first LaTeX pass of its next build (:meth:`filters.latex.runner.Session.start_ahead`)."""
    from filters.pipeline.build import build
    from filters.pipeline.errors import BuildError, report

    try:
        result = build(deck, out_dir, session=session, **options)
        if result.suffix == ".pdf":
            session.start_ahead(result.with_suffix(".tex"), deck=deck)
        return result
    except BuildError as exc:
        report(exc)
        print(f"{PREFIX} {deck} not built; waiting for the next save", file=sys.stderr, flush=True)
        return None


def watch(decks: list[Path], out_dir: Path, *, open_viewer: bool = False, **options) -> int:
    """Build ``decks`` now, then again whenever one of them, or a file in a deck's folder (a
    picture, an included file), is saved; stop on Ctrl-C or SIGTERM (raised here as
    ``KeyboardInterrupt``). ``options`` are :func:`filters.pipeline.build.build`'s.

    Returns:
        The exit status: 0 (a watch ends only when it is stopped).
    """
    from filters.latex.runner import Session

    decks, session = [Path(deck) for deck in decks], Session()
    for deck in decks:  # each save changes the file's time: the PDFs of a watch carry its start's
        session.pin_date(deck)
    try:
        return _watch(decks, out_dir, session, open_viewer=open_viewer, **options)
    finally:
        session.stop()


class _Signals:
    """Ctrl-C and SIGTERM set an event the watcher checks every step, and stop a build that is
    running: a signal is never left to land inside the file watcher's own code."""

    def __init__(self):
        self.stop, self.building = threading.Event(), False

    def __call__(self, signum, frame):
        self.stop.set()
        if self.building:
            raise KeyboardInterrupt


# Files a build, LaTeX, an editor or the watch's own log write, never a deck's source: a change to
# one must not start a build, or a watch whose log is in the deck's folder rebuilds for ever.
_NOT_SOURCES = (".log", ".tmp", ".temp", ".part", ".partial", ".lock", ".aux", ".nav", ".snm", ".toc", ".out",
                ".vrb", ".fls", ".fdb_latexmk", ".synctex.gz", ".bak", ".swp", ".swo")


def _own_output_files() -> set[tuple[int, int]]:
    """``(device, inode)`` of the regular files this process's stdout and stderr go to (a watch's
    log: ``attnslides watch deck.md 2> watch.log``)."""
    found = set()
    for fd in (1, 2):
        try:
            info = os.fstat(fd)
        except OSError:  # closed
            continue
        if stat.S_ISREG(info.st_mode):
            found.add((info.st_dev, info.st_ino))
    return found


class Wanted:
    """The watch's filter: whether a changed file may be a deck's source (the deck itself, a
    picture, an included file), so that its change starts a build. Everything a build or the
    watch itself writes is not: the output folder and the project's ``build/`` folder (figures,
    cache), the watch's own stdout and stderr files (its log), log, temporary and LaTeX files,
    hidden files and folders (editors' swap files, ``.git``) and what ``watchfiles`` ignores by
    default (``__pycache__`` …). A deck is always wanted, even inside those folders.

    Args:
        decks: the decks watched.
        out: the output folder (``--out``).
        build_root: the project's build folder (``build/`` of the folder the build runs in).
        own: ``(device, inode)`` of files this process writes (default: its stdout and stderr).
    """

    def __init__(self, decks: list[Path], out: Path, build_root: Path, own: set[tuple[int, int]] | None = None):
        import watchfiles

        self.decks = {deck.resolve() for deck in decks}
        self.folders = sorted({deck.parent for deck in self.decks})
        self.written = [out.resolve(), build_root.resolve()]
        self.own = _own_output_files() if own is None else own
        self.default = watchfiles.DefaultFilter()

    def __call__(self, change, path: str) -> bool:
        resolved = Path(path).resolve()
        if resolved in self.decks:
            return True
        if self._written_here(resolved):
            return False
        return self.default(change, path)

    def _written_here(self, path: Path) -> bool:
        """Whether ``path`` is a file the build or this watch writes (see the class)."""
        inside = [path.relative_to(f).parts for f in self.folders if path.is_relative_to(f)]
        if any(path.is_relative_to(folder) for folder in self.written) \
                or any(part.startswith(".") for parts in inside for part in parts) \
                or path.name.lower().endswith(_NOT_SOURCES):
            return True
        try:
            info = path.stat()
        except OSError:  # gone already: a temporary file
            return False
        return (info.st_dev, info.st_ino) in self.own


def _watch(decks: list[Path], out_dir: Path, session, *, open_viewer: bool, **options) -> int:
    import watchfiles

    from filters.blocks.parsers import BUILD_FOLDER

    folders = sorted({deck.resolve().parent for deck in decks})
    wanted = Wanted(decks, out_dir, Path(BUILD_FOLDER))

    signals = _Signals()
    previous = {sig: signal.signal(sig, signals) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # The watcher starts before the first builds, so that a save made while they run is seen.
        changes = watchfiles.watch(*folders, watch_filter=wanted, step=STEP_MS, debounce=1000, stop_event=signals.stop,
                                   rust_timeout=500, yield_on_timeout=True, raise_interrupt=False)
        next(changes)
        opened = False
        for deck in decks:
            signals.building = True
            result = _build_one(deck, out_dir, session, **options)
            signals.building = False
            if result and open_viewer and not opened:
                _open_viewer(result)
                opened = True
        print(f"{PREFIX} watching {', '.join(map(str, decks))} (Ctrl-C stops)", file=sys.stderr, flush=True)
        for batch in changes:
            changed = {Path(path).resolve() for _, path in batch}
            for deck in decks:
                own = deck.resolve()
                if own in changed or any(p.suffix != ".md" and p.is_relative_to(own.parent) for p in changed):
                    signals.building = True
                    _build_one(deck, out_dir, session, **options)
                    signals.building = False
            if signals.stop.is_set():
                break
    finally:
        signals.building = False
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
