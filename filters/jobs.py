"""Computing and drawing the blocks that miss the cache: in this process, or in a pool sized to the cores.

A :class:`Job` is everything one block needs (it pickles, so it can cross to a worker). Workers
come from a ``forkserver`` that imports torch and matplotlib once, so each worker starts warm
instead of paying those imports again; results equal a serial run's, since each job is seeded and
independent.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from filters.cache import Cache
from filters.entry import produce
from filters.errors import BlockError, JobTimeout, Where


@dataclass(frozen=True)
class Job:
    """One cache miss: a block's kind (by name), its options and where its entry goes."""

    kind: str  # a name in filters.kinds.KINDS
    options: object  # the kind's parsed options
    key: str
    cache_dir: str
    ext: str  # figure file type (pdf, svg, png); "" for a text kind, whose entry holds data only
    device: str
    lang: str
    where: Where
    cost: float = 1.0  # the kind's relative cost: the longest jobs start first


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Raise :class:`JobTimeout` in this thread after ``seconds`` (``None``: no limit).

    A timer signal interrupts Python code, and the engine's torch calls return to Python between
    operations. Works in the main thread, which is where workers and the filter run jobs.
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


def run_job(job: Job) -> float:
    """Compute and draw one block into a new cache entry. Returns the seconds it took.

    Raises:
        BlockError: when the engine or the renderer fails; the error names the block.
    """
    from filters.kinds import KINDS

    start = time.perf_counter()
    cache = Cache(job.cache_dir)
    staging = cache.staging(job.key)
    limit = job.options.time_limit()
    try:
        with time_limit(limit):
            produce(KINDS[job.kind], job.options, staging, ext=job.ext, device=job.device, lang=job.lang)
        cache.publish(staging, job.key)
    except BlockError as exc:
        raise exc.at(job.where) from None
    except JobTimeout as exc:
        raise BlockError(f"stopped after {limit:g} s: it ran past its time limit (raise it with timeout=…, "
                         "or make the block lighter)", key="timeout", where=job.where, line=exc.line) from None
    except Exception as exc:  # the engine or matplotlib failed: say which block, and why
        raise BlockError(f"{type(exc).__name__}: {exc}", where=job.where) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when published
    return time.perf_counter() - start


def _run_numbered(numbered: tuple[int, Job]) -> tuple[int, float]:
    n, job = numbered
    return n, run_job(job)


def _warm_worker(threads: int) -> None:
    import signal

    import torch

    # Ctrl-C is the parent's to handle: it stops the pool. A worker that caught it too could be
    # left behind, holding pandoc's stderr open, and the build would hang.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)


def run_all(jobs: list[Job], *, workers: int = 0, progress=None) -> None:
    """Run ``jobs``, in parallel when there are several and ``workers != 1``.

    Args:
        jobs: the cache misses.
        workers: pool size; 0 means one per core.
        progress: ``progress(done, total, job, seconds)`` after each job, or ``None``.

    Raises:
        BlockError: the first failure (the other jobs are stopped).
    """
    cores = os.cpu_count() or 1
    workers = min(len(jobs), workers or cores)
    jobs = sorted(jobs, key=lambda job: -job.cost)  # longest first: a short job ends the build
    if workers <= 1:
        for done, job in enumerate(jobs, start=1):
            seconds = run_job(job)
            if progress:
                progress(done, len(jobs), job, seconds)
        return
    context = multiprocessing.get_context("forkserver" if sys.platform != "win32" else "spawn")
    if hasattr(context, "set_forkserver_preload"):
        context.set_forkserver_preload(["filters.warm"])
    pool = context.Pool(workers, initializer=_warm_worker, initargs=(max(1, cores // workers),))
    try:
        for done, (n, seconds) in enumerate(pool.imap_unordered(_run_numbered, enumerate(jobs)), start=1):
            if progress:
                progress(done, len(jobs), jobs[n], seconds)
    except BaseException:
        # A failure or Ctrl-C: stop every worker now. Unfinished entries stay in their .tmp-
        # folders, which no build trusts.
        pool.terminate()
        raise
    else:
        pool.close()
    finally:
        pool.join()


def load(cache: Cache, key: str) -> tuple[Path, dict]:
    """The entry folder of ``key`` and its data."""
    folder = cache.entry(key)
    return folder, json.loads((folder / "data.json").read_text())
