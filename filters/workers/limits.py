"""A block's time limit: how long it may compute, and how it is stopped — the one place that decides.

A figure is drawn in seconds, so one still computing after :data:`FIGURE_TIME_LIMIT_S` is stuck; a
kind may let the block set its own limit (``Kind.timeout_option``: ``.run``'s ``timeout``). The
limit is enforced twice over, both here: a timer signal in the block's own process raises
:class:`~filters.errors.JobTimeout` (Python code, and torch between operations; the message can
then say which line it was on), and the build kills the process :data:`KILL_GRACE_S` later if it
is still running (a block stuck inside one C routine).
"""

from __future__ import annotations

import contextlib
import signal
import threading

from filters.errors import BlockError, JobTimeout

FIGURE_TIME_LIMIT_S = 300.0
# Seconds a job may run past its own limit before its process is killed: the signal inside it
# gets the first chance, so the message can say which line it was on.
KILL_GRACE_S = 5.0


def limit_of(kind, options) -> float:
    """Seconds a block of ``kind`` (a :class:`filters.blocks.kind.Kind`) may compute."""
    return getattr(options, kind.timeout_option) if kind.timeout_option else FIGURE_TIME_LIMIT_S


def timed_out(timeout_option: str | None, limit: float, where, line: int | None = None) -> BlockError:
    """The error of a block stopped at its time limit (``timeout_option``: its kind's)."""
    how = (f"raise it with {timeout_option}=…, or make the block lighter" if timeout_option else
           "make the block lighter (fewer steps, a smaller d_model, fewer samples …)")
    return BlockError(f"stopped after {limit:g} s: it ran past its time limit ({how})",
                      key=timeout_option, where=where, line=line)


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Raise :class:`JobTimeout` in this thread after ``seconds`` (``None``: no limit).

    A timer signal interrupts Python code, and torch's calls return to Python between operations;
    a block stuck inside one C routine is stopped by the build instead, which kills its process
    :data:`KILL_GRACE_S` later (:mod:`filters.workers.jobs`). Only in the main thread, where
    blocks run.
    """
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise JobTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
