"""Child processes bounded and gone with the build — the one place for how a child is started and
how what a build started is found and killed. Used by pandoc's runs (:mod:`filters.util.pandoc`),
LaTeX's (:mod:`filters.latex.passes`), the figure workers (:mod:`filters.workers.jobs`) and the
per-deck builds of a multi-deck build (:mod:`filters.cli.main`).

* **Bounded.** Every child runs under a memory limit (:func:`limit_memory`: ``RLIMIT_AS``, the
  address space, for pandoc and LaTeX, which hold what they reserve; ``RLIMIT_DATA``, what it
  writes into, for Python with torch, which reserves far more than it uses — CUDA terabytes) and a
  time limit, its stage's (pandoc's in :mod:`filters.util.pandoc`, LaTeX's in
  :mod:`filters.latex.passes`, a block's in :mod:`filters.workers.limits`).
* **Gone with the build**, however it ends. A direct child dies with its parent
  (:func:`die_with_parent`); a process group is killed whole; and :func:`guarded` marks every
  process the build starts, at any depth and in any session (a ``.run`` block's daemon), so that
  the build kills them all when it ends, and a small janitor process does it when the build was
  killed (:mod:`filters.util.janitor`). A process that erases its own environment and leaves its
  session escapes the mark: only a cgroup or a PID namespace would hold it, which an unprivileged
  build cannot count on.
* **A block's leftovers**: a worker is a subreaper (:func:`become_subreaper`), so what its block
  started stays among its descendants, which :func:`kill_descendants` ends when the block does.

Linux-only calls are guarded: elsewhere they do nothing.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from filters.util.janitor import MARK, proc_files, sweep

try:
    import resource
except ImportError:  # not on Windows
    resource = None

# What pandoc and LaTeX may take (address space): a deck needs a few hundred MB; pandoc reading
# deeply nested brackets takes gigabytes.
CHILD_MEMORY_BYTES = 4 << 30


def _prctl():
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    return ctypes.CDLL(None, use_errno=True).prctl


# Looked up once, here: a child between fork and exec must not load a library (another thread of
# the parent, a watch's file watcher, may hold the loader's lock at the fork).
_PRCTL = _prctl()
_PR_SET_PDEATHSIG, _PR_SET_CHILD_SUBREAPER = 1, 36


def die_with_parent() -> None:
    """In a child process, before it runs: be killed when the process that started it dies, even
    by SIGKILL (Linux's PR_SET_PDEATHSIG; elsewhere nothing). For ``subprocess``'s ``preexec_fn``."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


def limit_memory(nbytes: int, *, written: bool = False) -> None:
    """Limit this process (and what it starts) to ``nbytes`` of address space, or with ``written``
    to ``nbytes`` of memory it writes into (``RLIMIT_DATA``: its heap and private mappings, not
    address space reserved and never used). Only the soft limit: a child may set its own, up to
    the hard limit, which is never passed. Nothing where there are no such limits."""
    if resource is None:
        return
    which = resource.RLIMIT_DATA if written else resource.RLIMIT_AS
    _, hard = resource.getrlimit(which)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(which, (nbytes if hard == resource.RLIM_INFINITY else min(nbytes, hard), hard))


def bounded(memory: int = CHILD_MEMORY_BYTES, *, written: bool = False):
    """A ``preexec_fn`` for a child: it dies with this process and runs under ``memory`` bytes
    (:func:`limit_memory`)."""

    def before_exec() -> None:
        die_with_parent()
        limit_memory(memory, written=written)

    return before_exec


def kill_group(process: subprocess.Popen) -> None:
    """Kill a child started in a session of its own (``start_new_session=True``) and its group, and reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait()


def run_bounded(command: list[str], *, timeout: float, memory: int = CHILD_MEMORY_BYTES, input: str | None = None,
                **popen) -> subprocess.CompletedProcess:
    """``command`` run to its end, its output captured as text: in a process group of its own, under
    ``memory`` bytes of address space, dying with this process; killed whole at ``timeout`` seconds
    or when this process is interrupted.

    Raises:
        subprocess.TimeoutExpired: when it ran past ``timeout`` (it was killed).
    """
    process = subprocess.Popen(command, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=bounded(memory), **popen)
    try:
        out, err = process.communicate(input=input, timeout=timeout)
    except BaseException:  # the time limit, Ctrl-C, SIGTERM: no pandoc left reading on
        kill_group(process)
        raise
    return subprocess.CompletedProcess(command, process.returncode, out, err)


# ---------------------------------------------------------------------------------------------
# Everything a build started, gone with it
# ---------------------------------------------------------------------------------------------


def _janitor(build_id: str) -> subprocess.Popen | None:
    """The janitor of ``build_id`` (:mod:`filters.util.janitor`), in a session of its own (Ctrl-C
    and the death of the build leave it running), holding no folder; ``None`` where none can start."""
    env = {k: v for k, v in os.environ.items() if k != MARK}  # never killed by a sweep itself
    script = Path(__file__).with_name("janitor.py")
    try:
        return subprocess.Popen([sys.executable, "-S", "-E", str(script), build_id], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/", env=env,
                                start_new_session=True)
    except OSError:
        return None


@contextlib.contextmanager
def guarded():
    """While it lasts, every process this one starts (and they start, at any depth) carries a mark
    of this build in its environment; at its end they are killed, and if this process is killed
    instead (even by SIGKILL), its janitor kills them. Yields the build's id. On a system without
    ``/proc`` the mark is set but nothing is searched or killed."""
    build_id = f"{os.getpid()}.{secrets.token_hex(4)}"
    before = os.environ.get(MARK)
    os.environ[MARK] = f"{before}:{build_id}" if before else build_id
    janitor = _janitor(build_id) if os.path.isdir("/proc") else None
    try:
        yield build_id
    finally:
        sweep(build_id)
        if janitor is not None:
            with contextlib.suppress(OSError):
                janitor.stdin.write(b"done")
                janitor.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                janitor.wait(timeout=5)
        if before is None:
            os.environ.pop(MARK, None)
        else:
            os.environ[MARK] = before


def unmarked_env() -> dict[str, str]:
    """This process's environment without the build's mark: for what must outlive the build (the
    PDF viewer a watch opens)."""
    return {k: v for k, v in os.environ.items() if k != MARK}


def become_subreaper() -> None:
    """Make this process the one its orphaned descendants are given to (Linux's
    PR_SET_CHILD_SUBREAPER): a daemon started below it, in a session of its own, stays among its
    descendants, where :func:`kill_descendants` finds it. Elsewhere nothing."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_CHILD_SUBREAPER, 1)


def _children() -> dict[int, list[int]]:
    """Each process's children, from ``/proc/<pid>/stat`` (empty without ``/proc``), zombies
    included: one that just ended may have had a child a moment ago, given to its subreaper now."""
    children: dict[int, list[int]] = {}
    for pid, stat in proc_files("stat"):
        fields = stat[stat.rfind(b")") + 2:].split()  # after "(command)", which may hold spaces
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(pid)
    return children


def _descendants(pid: int) -> set[int]:
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _reap() -> None:
    """Reap this process's children that have ended (zombies), without waiting."""
    with contextlib.suppress(ChildProcessError, OSError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


# How long the search for descendants waits between two rounds that find nothing: a process that
# has just forked (``setsid -f``) shows its child in /proc, or hands it to its subreaper, by then.
SETTLE_S = 0.02


def kill_descendants(pid: int | None = None, *, itself: bool = False) -> None:
    """Kill every descendant of ``pid`` (default: this process, a subreaper, whose ended children
    are reaped too), and with ``itself`` ``pid`` too: each stopped first (a stopped process starts
    no other), the search (children by their parent's id in ``/proc``, recursively) repeated until
    two rounds :data:`SETTLE_S` apart find nothing new (a process seen a moment ago may have forked
    since and ended, its child given to the subreaper only then), then all killed."""
    own = pid is None or pid == os.getpid()
    pid = os.getpid() if pid is None else pid
    stopped: set[int] = set()
    if itself:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGSTOP)
    quiet = 0
    for _ in range(1000):
        found = _descendants(pid) - stopped
        for child in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(child, signal.SIGSTOP)
        stopped |= found
        quiet = 0 if found else quiet + 1
        if quiet >= 2:
            break
        if not found:
            time.sleep(SETTLE_S)
    for child in stopped | ({pid} if itself else set()):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(child, signal.SIGKILL)
    if own and not itself:
        _reap()
