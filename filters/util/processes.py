"""Child processes that end with the build: a helper shared by LaTeX's runs (:mod:`filters.latex.runner`)
and the figure workers (:mod:`filters.workers.jobs`)."""

from __future__ import annotations

import signal
import sys


def _prctl():
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    return ctypes.CDLL(None, use_errno=True).prctl


# Looked up once, here: a child between fork and exec must not load a library (another thread of
# the parent, a watch's file watcher, may hold the loader's lock at the fork).
_PRCTL = _prctl()


def die_with_parent() -> None:
    """In a child process, before it runs: be killed when the process that started it dies, even
    by SIGKILL (Linux's PR_SET_PDEATHSIG; elsewhere nothing). For ``subprocess``'s ``preexec_fn``."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
