"""What finds and kills the processes of a build, by the mark they carry — and the janitor, a
small process that does it when the build itself was killed (``kill -9``), as the build's own
``finally`` then never runs.

Every process a build starts carries the build's mark in its environment
(:data:`MARK`\\ ``=…:<id>``, a chain: a deck built by a multi-deck build carries its parent's id
too), inherited by whatever it starts in turn, in a session of its own or not. Linux shows a
process's environment in ``/proc/<pid>/environ``; elsewhere nothing is found (and nothing killed).

Run as a script (``python -S janitor.py <id>``, by :func:`filters.util.processes.guarded`) it
waits on its standard input, a pipe whose other end only the build holds: ``done`` then the end
means the build ended on its own and cleaned up itself; the end alone means it died, and the
janitor kills every process marked with its id. Standard library only: it starts in milliseconds.
"""

from __future__ import annotations

import os
import signal
import sys

MARK = "ATTNSLIDES_BUILD"
_PROC = "/proc"


def proc_files(name: str):
    """``(pid, bytes)`` of ``/proc/<pid>/<name>`` for each process whose file can be read (one of
    another user, or one that just ended, cannot); nothing without ``/proc``."""
    try:
        pids = [int(entry) for entry in os.listdir(_PROC) if entry.isdigit()]
    except OSError:
        return
    for pid in pids:
        try:
            with open(f"{_PROC}/{pid}/{name}", "rb") as file:
                yield pid, file.read()
        except OSError:
            continue


def marked(build_id: str) -> list[int]:
    """The processes (pids) whose environment carries ``build_id`` in its :data:`MARK` chain; not this
    one. Processes of another user, zombies and ones that just ended are left out (unreadable)."""
    wanted, found = build_id.encode(), []
    prefix = MARK.encode() + b"="
    for pid, environ in proc_files("environ"):
        if pid == os.getpid():
            continue
        for entry in environ.split(b"\0"):
            if entry.startswith(prefix) and wanted in entry[len(prefix):].split(b":"):
                found.append(pid)
                break
    return found


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def sweep(build_id: str, *, spare: frozenset[int] = frozenset()) -> int:
    """Kill every process marked with ``build_id`` but those in ``spare``; return how many.

    Each is stopped first (a stopped process starts no other), and the search repeated until it
    finds no new one, so that a process started meanwhile is not missed; then all are killed."""
    stopped: set[int] = set()
    for _ in range(1000):  # a fork bomb outruns no search for long: each round stops what it found
        found = set(marked(build_id)) - stopped - spare
        if not found:
            break
        for pid in found:
            _signal(pid, signal.SIGSTOP)
        stopped |= found
    for pid in stopped:
        _signal(pid, signal.SIGKILL)
    return len(stopped)


def main(build_id: str) -> None:
    """Wait for the build's end (the end of standard input); clean up after it unless it said ``done``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the build's; this one outlives it
    said = b""
    while chunk := os.read(0, 64):
        said += chunk
    if not said.startswith(b"done"):
        sweep(build_id)


if __name__ == "__main__":
    main(sys.argv[1])
