"""Several decks built side by side (``attnslides build a.md b.md``): each in a process of its own
(``attnslides build DECK``), bounded like every child (:mod:`filters.util.processes`), sharing the
cores, and their output never interleaved.

* **The cores shared.** ``--parallel`` decks at once (default: one per core, at most one per
  deck), and each deck's figure workers get its share of the cores (``--jobs``): decks × workers
  never outnumber the cores unless ``--parallel`` asks for more decks than cores.
* **Output whole, deck by deck.** Each deck's lines are printed together, in the order the decks
  were named: the oldest running deck's as they come, the others' kept until it is their turn.
* **Bounded.** A deck's build runs at most :data:`DECK_TIME_LIMIT_S` (its pandoc, its blocks and
  its LaTeX passes have their own, shorter limits) and under :data:`DECK_MEMORY_GB`; it dies with
  this build, and what it started with it (its own janitor).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from filters.errors import PREFIX
from filters.util.processes import bounded

# One deck's whole build: each of its pandoc runs, blocks and LaTeX passes is bounded on its own
# (at most minutes); a deck still building after this is stuck.
DECK_TIME_LIMIT_S = 2 * 3600.0
# What one deck's build process may write into (its figure workers have their own limits).
DECK_MEMORY_GB = 8


class _Deck:
    """One deck's build: its process and the lines it printed, read by a thread of their own."""

    def __init__(self, deck: Path, command: list[str]):
        self.deck, self.started, self.lines, self.shown, self.note = deck, time.monotonic(), [], 0, ""
        self.waited = False
        env = dict(os.environ, PYTHONUNBUFFERED="1")  # its lines as it prints them, not at its end
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        errors="replace", env=env,
                                        preexec_fn=bounded(DECK_MEMORY_GB << 30, written=True))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)  # one append: safe beside the thread that prints

    def new_lines(self) -> list[str]:
        """The lines printed since the last call."""
        end = len(self.lines)
        lines, self.shown = self.lines[self.shown:end], end
        return lines

    def over(self) -> bool:
        """Whether it ended and all it printed was read (what it left running is gone with it; a
        pipe still held open after 5 s is read on, but no longer waited for)."""
        if self.process.poll() is None:
            return False
        if not self.waited:
            self.reader.join(timeout=5)
            self.waited = True
        return True

    def stop(self, note: str = "") -> None:
        """Kill it (its janitor then kills what it started)."""
        self.note = self.note or note
        self.process.kill()
        self.process.wait()


def build_in_parallel(decks: list[Path], options: list[str], *, parallel: int, keep_going: bool
                      ) -> tuple[list[str], int]:
    """Build ``decks`` with the ``attnslides build`` ``options``, ``parallel`` at once (0: one per
    core); return the decks that failed and how many were never started. A failure lets the running
    builds finish and starts no new one, unless ``keep_going``. Ctrl-C or SIGTERM (a
    ``KeyboardInterrupt``) stops them all."""
    cores = os.cpu_count() or 1
    at_once = max(1, min(len(decks), parallel or cores))
    share = max(1, cores // at_once)  # decks × workers ≤ cores
    pending, started, failed = list(decks), [], []
    try:
        while True:
            _watch(started, failed)
            running = sum(d.process.poll() is None for d in started)
            while pending and running < at_once and (keep_going or not failed):
                deck = pending.pop(0)
                started.append(_Deck(deck, [sys.executable, "-m", "filters.cli", "build", str(deck), "--jobs", str(share),
                                            *options]))
                running += 1
            if not running:
                break
            _print(started)
            time.sleep(0.05)
    finally:  # interrupted: stop the builds still running, as Ctrl-C does
        for deck in started:
            if deck.process.poll() is None:
                deck.process.terminate()
        for deck in started:
            deck.process.wait()
        _watch(started, failed)
        _print(started, final=True)
    return failed, len(pending)


def _watch(started: list[_Deck], failed: list[str]) -> None:
    """Stop a deck past its time limit; note each deck that failed."""
    for deck in started:
        if deck.process.poll() is None and time.monotonic() - deck.started > DECK_TIME_LIMIT_S:
            deck.stop(f"{PREFIX} {deck.deck}: its build ran for more than {DECK_TIME_LIMIT_S:g} s and was stopped\n")
        if deck.process.returncode not in (None, 0) and str(deck.deck) not in failed:
            failed.append(str(deck.deck))


def _print(started: list[_Deck], *, final: bool = False) -> None:
    """Print the decks' lines in the order they were started: all of a deck's before the next
    deck's; the first deck that is still running shows its lines as they come."""
    for deck in started:
        sys.stderr.writelines(deck.new_lines())
        if not (deck.over() or final):
            break
        sys.stderr.writelines(deck.new_lines())
        if deck.note:
            sys.stderr.write(deck.note)
            deck.note = ""
    sys.stderr.flush()
