"""A block's limits: how long it may compute and how much memory it may take, and how it is
stopped — the one place that decides.

A figure is drawn in seconds, so one still computing after :data:`FIGURE_TIME_LIMIT_S` is stuck; a
kind may let the block set its own limit (``Kind.timeout_option``: ``.run``'s ``timeout``). The
limit is enforced twice over, both here: a timer signal in the block's own process raises
:class:`~filters.errors.JobTimeout` (Python code, and torch between operations; the message can
then say which line it was on), and the build kills the process :data:`KILL_GRACE_S` later if it
is still running (a block stuck inside one C routine).

Its memory: a figure may take :data:`FIGURE_MEMORY_GB` beyond what its warm worker holds already
(torch, matplotlib: about 0.8 GB); a kind may let the block set its own (``Kind.memory_option``:
``.run``'s ``memory``). The worker's process limits the memory it writes into
(:func:`filters.util.processes.limit_memory`, ``RLIMIT_DATA``: torch and CUDA reserve address space
they never use), so an allocation past it fails in the block, as a ``MemoryError`` or torch's "can't
allocate memory" (:class:`filters.errors.JobOutOfMemory`), which :func:`ran_out` names.
"""

from __future__ import annotations

import contextlib
import signal
import threading

from filters.errors import BlockError, JobTimeout
from filters.util import processes

FIGURE_TIME_LIMIT_S = 300.0
FIGURE_MEMORY_GB = 4.0
# Seconds a job may run past its own limit before its process is killed: the signal inside it
# gets the first chance, so the message can say which line it was on.
KILL_GRACE_S = 5.0


def limit_of(kind, options) -> float:
    """Seconds a block of ``kind`` (a :class:`filters.blocks.kind.Kind`) may compute."""
    return getattr(options, kind.timeout_option) if kind.timeout_option else FIGURE_TIME_LIMIT_S


def memory_of(kind, options) -> float:
    """Gigabytes a block of ``kind`` may take beyond its worker's own."""
    return getattr(options, kind.memory_option) if kind.memory_option else FIGURE_MEMORY_GB


def limit_memory(gigabytes: float) -> None:
    """In a block's worker, before the block runs: limit what it may allocate to ``gigabytes``
    beyond what the worker holds now."""
    held = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/status") as status:  # Linux: VmData, in kB
            held = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmData:"))
    processes.limit_memory(held + int(gigabytes * 2**30), written=True)


def ran_out(memory_option: str | None, gigabytes: float, where, line: int | None = None) -> BlockError:
    """The error of a block that tried to take more than its ``gigabytes`` (``memory_option``: its kind's)."""
    how = (f"raise it with {memory_option}=…, or use smaller tensors" if memory_option else
           "make the block lighter (a smaller d_model, fewer tokens …)")
    return BlockError(f"it ran out of memory: it may take {gigabytes:g} GB ({how})", key=memory_option, where=where,
                      line=line)


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
