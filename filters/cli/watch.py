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


def _watch(decks: list[Path], out_dir: Path, session, *, open_viewer: bool, **options) -> int:
    import watchfiles

    out = out_dir.resolve()
    folders = sorted({deck.resolve().parent for deck in decks})

    def wanted(change, path: str) -> bool:
        path_ = Path(path)
        inside = [path_.relative_to(f).parts for f in folders if path_.is_relative_to(f)]
        if path_.is_relative_to(out) or any(part.startswith(".") for parts in inside for part in parts):
            return False  # our own outputs; editors' swap and backup files, .git
        return default(change, path)

    default = watchfiles.DefaultFilter()

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
