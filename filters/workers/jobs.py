"""Computing and drawing the blocks that miss the cache: each in a warm process of its own.

A :class:`Job` is everything one block needs (it pickles, so it can cross to a worker). Each job
runs in a process forked from a ``forkserver`` that imported torch, matplotlib and the engine once,
so it starts warm; up to one job per core runs at a time, the longest first. A process per job,
watched by this one, is what lets a build stop a block that runs past its time limit even inside
a C routine, name the block whose process crashed or exited, and keep what one block's code does
(``.run``: replace ``torch.softmax``, change directory) away from every other block. Neither
``multiprocessing.Pool`` nor ``ProcessPoolExecutor`` can stop one busy task or notice that its
process died, hence this small scheduler.

A build with ``jobs: 1`` computes declarative kinds in this process (no worker to start); code
written in the deck (``.run``) always runs in a process of its own. Results equal a serial run's,
since each job is seeded and independent.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from filters.blocks.page import DEFAULT_PAGE, Page
from filters.cache.store import Cache, project_of
from filters.errors import PREFIX, BlockError, BlockErrors, JobOutOfMemory, JobTimeout, Where, tracebacks_wanted
from filters.figures.entry import produce
from filters.util.processes import become_subreaper, die_with_parent, kill_descendants
from filters.workers.limits import KILL_GRACE_S, limit_memory, limit_of, memory_of, ran_out, time_limit, timed_out


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
    executes: bool = False  # runs code written in the deck: always in a process of its own
    limit: float = 300.0  # seconds it may compute (filters.workers.limits)
    timeout_option: str | None = None  # the option that sets the limit, named when it strikes
    memory: float = 4.0  # gigabytes it may take beyond its worker's own (filters.workers.limits)
    memory_option: str | None = None  # the option that sets them, named when they run out
    # --traceback, as the build was asked: the job's process (forked from a server started earlier,
    # with the environment of then) cannot read it from its own environment
    tracebacks: bool = field(default_factory=tracebacks_wanted)
    home: str = ""  # the deck's folder, where code written in the deck runs ("": the build's folder)
    page: Page = DEFAULT_PAGE  # the text area of the deck's frames, which its figures are drawn for

    @classmethod
    def of(cls, kind, options, *, key: str, cache_dir: str, ext: str, device: str, lang: str, where: Where,
           home: str = "", page: Page = DEFAULT_PAGE) -> Job:
        """The job of one block of ``kind`` (a :class:`filters.blocks.kind.Kind`): what the worker
        needs of the kind (its cost, whether it runs the deck's code, its limits) read here."""
        return cls(kind.name, options, key, cache_dir, ext, device, lang, where, kind.cost, kind.executes,
                   limit_of(kind, options), kind.timeout_option, memory_of(kind, options), kind.memory_option,
                   home=home, page=page)


def run_job(job: Job) -> float:
    """Compute and draw one block into a new cache entry. Returns the seconds it took.

    Raises:
        BlockError: when the engine or the renderer fails; the error names the block.
    """
    from filters.kinds import KINDS

    start = time.perf_counter()
    cache = Cache(job.cache_dir)
    staging = cache.staging(job.key)
    try:
        with time_limit(job.limit):
            produce(KINDS[job.kind], job.options, staging, ext=job.ext, device=job.device, lang=job.lang, page=job.page,
                    home=Path(job.home) if job.home else None, project=project_of(cache.root))
        cache.publish(staging, job.key)
    except BlockError as exc:
        raise exc.at(job.where) from None
    except JobTimeout as exc:
        raise timed_out(job.timeout_option, job.limit, job.where, exc.line) from None
    except JobOutOfMemory as exc:
        raise ran_out(job.memory_option, job.memory, job.where, exc.line) from None
    except Exception as exc:  # the engine or matplotlib failed: say which block, and why
        if JobOutOfMemory.caused(exc):
            raise ran_out(job.memory_option, job.memory, job.where) from None
        raise BlockError(f"{type(exc).__name__}: {exc}", where=job.where,
                         details=traceback.format_exc() if tracebacks_wanted() else "") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when published
    return time.perf_counter() - start


STILL_S = 15.0  # a running block says so every this many seconds


def _child(job: Job, threads: int, conn) -> None:
    """The body of a job's process: compute, then send ``("ok", seconds)`` or ``("error", BlockError)``."""
    import torch

    # Ctrl-C is the build's: it stops the jobs. File descriptor 1 is pandoc's JSON stream when the
    # filter runs under pandoc: nothing a block does may write there, so it goes to stderr.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())  # (started while the build held its signals back)
    # A process group of its own, which the build kills whole (with what a .run block started), and
    # death with the forkserver, which ends when the build does, however it ends (even SIGKILL). A
    # subreaper: a daemon the block starts (its own session) stays among this process's descendants,
    # all killed when the block ends. Its memory limit, beyond what this warm process holds.
    os.setpgid(0, 0)
    die_with_parent()
    become_subreaper()
    limit_memory(job.memory)
    os.dup2(2, 1)
    os.environ["ATTNSLIDES_TRACEBACK"] = "1" if job.tracebacks else "0"
    torch.set_num_threads(threads)
    try:
        outcome = ("ok", run_job(job))
    except BlockError as exc:
        outcome = ("error", exc)
    except BaseException as exc:  # noqa: BLE001 — anything else still names the block
        outcome = ("error", BlockError(f"{type(exc).__name__}: {exc}", where=job.where,
                                       details=traceback.format_exc() if job.tracebacks else ""))
    try:
        kill_descendants()  # what the block left running ends with it, before the build hears it ended
        conn.send(outcome)
    finally:
        conn.close()


@contextlib.contextmanager
def _signals_held():
    """Hold Ctrl-C and SIGTERM back while a worker starts and is registered; they arrive after."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _kill_group(process) -> None:
    """Kill a job's process and every process it started: its descendants (it is their subreaper),
    and its process group."""
    kill_descendants(process.pid, itself=True)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


def _context():
    context = multiprocessing.get_context("forkserver" if sys.platform != "win32" else "spawn")
    if hasattr(context, "set_forkserver_preload"):
        context.set_forkserver_preload(["filters.workers.warm"])
    return context


def compute_all(jobs: list[Job], *, workers: int = 0, cores: int = 0, progress=None, keep_going: bool = False,
                deck: str = "the deck") -> None:
    """Run ``jobs``: in this process when ``workers == 1`` and none runs the deck's code, else each
    in a warm process of its own, ``workers`` at a time (0: one per core), the longest first; never
    more at once than there are ``cores``, nor more threads in all. Each job's entry is published as
    it finishes, so a build that fails keeps every figure it finished.

    Args:
        jobs: the cache misses.
        workers: how many at once; 0 means one per core.
        cores: the cores this build may keep busy (a deck's share of a multi-deck build); 0: all.
        progress: ``progress(done, total, job, seconds)`` after each job, or ``None``.
        keep_going: ``--keep-going``: a failure stops nothing; every other job is computed (those
            running then finish, as in ``make -k``) and the failures are raised at the end.
        deck: how the errors of ``keep_going`` name the deck.

    Raises:
        BlockError: the first failure (the other jobs are stopped): the block's own error, its time
            limit, or its process ending without a result; with ``keep_going``, every failure
            (:class:`filters.errors.BlockErrors` when there are several), once the others are done.
    """
    cores = min(cores or os.cpu_count() or 1, os.cpu_count() or 1)
    workers = max(1, min(len(jobs), workers or cores, cores))
    jobs = sorted(jobs, key=lambda job: -job.cost)  # longest first: a short job ends the build
    failures: list[BlockError] = []
    if workers == 1 and not any(job.executes for job in jobs):
        _compute_here(jobs, cores, progress, failures if keep_going else None)
    else:
        _Pool(jobs, workers, max(1, cores // workers), progress, failures if keep_going else None).run()
    if failures:
        raise failures[0] if len(failures) == 1 else BlockErrors(failures, deck)


def _compute_here(jobs: list[Job], cores: int, progress, failures: list[BlockError] | None) -> None:
    """Run ``jobs`` one after another in this process; a failure is raised, or (``failures`` given:
    ``--keep-going``) added to them."""
    import torch

    if cores < torch.get_num_threads():  # a deck's share of the cores: torch's threads too
        torch.set_num_threads(cores)
    for done, job in enumerate(jobs, start=1):
        try:
            seconds = run_job(job)
        except BlockError as exc:
            if failures is None:
                raise
            failures.append(exc)
            continue
        if progress:
            progress(done, len(jobs), job, seconds)


class _Pool:
    """The jobs of one build, each in a process of its own, ``workers`` at a time. ``failures``:
    where a failure goes under ``--keep-going`` (``None``: it is raised, and stops the others)."""

    def __init__(self, jobs: list[Job], workers: int, threads: int, progress, failures: list | None = None):
        self.context, self.pending, self.workers, self.threads = _context(), list(jobs), workers, threads
        self.running: dict = {}  # the pipe a job's result comes through → (job, process, start time)
        self.total, self.done, self.told, self.progress = len(jobs), 0, {}, progress
        self.failures = failures

    def run(self) -> None:
        try:
            while self.pending or self.running:
                while self.pending and len(self.running) < self.workers:
                    self._start(self.pending.pop(0))
                for conn in multiprocessing.connection.wait(list(self.running), timeout=0.5):
                    job, process, _ = self.running.pop(conn)
                    self.done += 1
                    with self._failure_kept():
                        outcome = _outcome(conn, process, job)
                        if self.progress:
                            self.progress(self.done, self.total, job, outcome)
                self._watch_clocks()
        finally:
            # A failure or Ctrl-C: stop every job still running. Unfinished entries stay in their
            # .tmp- folders, which no build trusts.
            for _, process, _ in self.running.values():
                _kill_group(process)
            for _, process, _ in self.running.values():
                process.join()

    @contextlib.contextmanager
    def _failure_kept(self):
        """Under ``--keep-going``, a block's failure is kept for the end; else it goes on up."""
        try:
            yield
        except BlockError as exc:
            if self.failures is None:
                raise
            self.failures.append(exc)

    def _start(self, job: Job) -> None:
        receive, send = self.context.Pipe(duplex=False)
        process = self.context.Process(target=_child, args=(job, self.threads, send), daemon=True)
        with _signals_held():  # a Ctrl-C now would leave a worker no one knows of
            process.start()
            send.close()
            self.running[receive] = (job, process, time.monotonic())

    def _watch_clocks(self) -> None:
        """Kill a job :data:`KILL_GRACE_S` past its limit; say now and then that a long one runs."""
        for conn, (job, process, started) in list(self.running.items()):
            elapsed = time.monotonic() - started
            if job.limit and elapsed > job.limit + KILL_GRACE_S:
                _kill_group(process)
                process.join()
                del self.running[conn]
                conn.close()
                with self._failure_kept():
                    raise timed_out(job.timeout_option, job.limit, job.where)
                continue
            if elapsed > STILL_S * (self.told.get(job.key, 0) + 1):  # a word now and then on a long block
                self.told[job.key] = self.told.get(job.key, 0) + 1
                limit = f" of at most {job.limit:g}" if job.limit else ""
                print(f"{PREFIX} still computing «{job.where.slide}» {job.where.block.split(' (')[0]} "
                      f"({elapsed:.0f} s{limit})", file=sys.stderr, flush=True)


def _outcome(conn, process, job: Job) -> float:
    """What a finished job's process sent: its seconds; or the error it sent, or the one its exit is."""
    try:
        status, value = conn.recv()
    except EOFError:  # the process ended without a word: os._exit, a crash, a kill
        process.join()
        _kill_group(process)
        code = process.exitcode
        how = f"was killed by signal {-code}" if code and code < 0 else f"ended with exit code {code}"
        raise BlockError(f"its process {how} before it finished (os._exit, a crash in a C library, or memory "
                         "running out)", where=job.where) from None
    finally:
        conn.close()
    process.join()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # what a .run block started and left running
    if status == "error":
        raise value
    return value
