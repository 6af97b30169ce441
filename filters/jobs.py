"""Rendering the blocks that miss the cache: in this process, or in a pool sized to the cores.

A :class:`Job` is everything one block needs (it pickles, so it can cross to a worker). Workers
come from a ``forkserver`` that imports torch and matplotlib once, so each worker starts warm
instead of paying those imports again; results equal a serial run's, since each job is seeded and
independent.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from filters.cache import Cache
from filters.errors import BlockError, Where


@dataclass(frozen=True)
class Job:
    spec: object  # a spec from filters.options
    key: str
    cache_dir: str
    ext: str  # figure file type: pdf, svg, png; "tex" or "html" for the worked example
    device: str
    lang: str
    where: Where


def run_job(job: Job) -> float:
    """Compute and draw one block into a new cache entry. Returns the seconds it took.

    Raises:
        BlockError: when the engine or the renderer fails; the error names the block.
    """
    start = time.perf_counter()
    cache = Cache(job.cache_dir)
    staging = cache.staging(job.key)
    try:
        from filters.compute import compute

        data = compute(job.spec, job.device)
        if job.ext in ("pdf", "svg", "png"):
            from filters.render import render

            render(data, job.spec, staging / f"figure.{job.ext}", lang=job.lang)
        (staging / "data.json").write_text(json.dumps(data, ensure_ascii=False, indent=1))
        cache.publish(staging, job.key)
    except BlockError as exc:
        raise exc.at(job.where) from None
    except Exception as exc:  # the engine or matplotlib failed: say which block, and why
        raise BlockError(f"{type(exc).__name__}: {exc}", where=job.where) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when published
    return time.perf_counter() - start


# Rough cost of each kind, relative: the pool starts the longest jobs first, so that a long job
# does not start last and keep the build waiting alone.
COST = {"trained-attention": 10, "permutation": 3, "posenc": 2, "attention": 1, "scaling": 1, "attention-steps": 0}


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
        BlockError: the first failure (the other jobs are cancelled or left to finish).
    """
    cores = os.cpu_count() or 1
    workers = min(len(jobs), workers or cores)
    jobs = sorted(jobs, key=lambda job: -COST.get(job.spec.kind, 1))  # longest first: a short last job
    if workers <= 1:
        for done, job in enumerate(jobs, start=1):
            seconds = run_job(job)
            if progress:
                progress(done, len(jobs), job, seconds)
        return
    context = multiprocessing.get_context("forkserver" if sys.platform != "win32" else "spawn")
    if hasattr(context, "set_forkserver_preload"):
        context.set_forkserver_preload(["filters.warm"])
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_warm_worker,
                               initargs=(max(1, cores // workers),))
    try:
        futures = {pool.submit(run_job, job): job for job in jobs}
        for done, future in enumerate(as_completed(futures), start=1):
            seconds = future.result()
            if progress:
                progress(done, len(jobs), futures[future], seconds)
    except BaseException:
        # A failure or Ctrl-C: stop now. Unfinished entries stay in their .tmp- folders, which no
        # build trusts. (ProcessPoolExecutor has no public way to stop busy workers before 3.14.)
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def load(cache: Cache, key: str) -> tuple[Path, dict]:
    """The entry folder of ``key`` and its data."""
    folder = cache.entry(key)
    return folder, json.loads((folder / "data.json").read_text())
