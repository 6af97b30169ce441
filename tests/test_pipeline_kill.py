"""A build killed with ``kill -9`` leaves no process behind: not its pandoc, not its figure
workers, not a daemon a ``.run`` block started in a session of its own, not the per-deck builds of
a multi-deck build. Word output, so that no LaTeX is needed."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import processes_with_argument

ATTNSLIDES = str(Path(sys.executable).with_name("attnslides"))

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")]

# A .run block that leaves two daemons, each in a session of its own (double fork + setsid): a
# `sleep` with an argument no other process has, and a forked Python that sleeps (the block itself
# lasts 3 s more, while they run); then a block that is still computing when the build is killed.
DECK = """---
title: Demonios {n}
lang: es
---

# Un demonio

```{{.python .run #demonio}}
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "{sleep}"])
    if os.fork() == 0:
        time.sleep(600)
    os._exit(0)
os.wait()
time.sleep(3)
print("listo")
```

# Lento

```{{.python .run #lento timeout=600}}
import time
time.sleep(600)
```
"""


def _environ_has(pid: str, tag: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as file:
            return tag in file.read()
    except OSError:
        return False


def _cmdline(pid: str) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            return file.read()
    except OSError:
        return b""


def survivors(tag: str, sleep: str) -> list[str]:
    """Processes of the build: those carrying ``tag`` in their environment (every process a build
    starts inherits it), or the daemon ``sleep`` by its unique argument; with their command lines."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        cmdline = _cmdline(pid)
        if pid != str(os.getpid()) and (_environ_has(pid, tag.encode()) or sleep.encode() in cmdline.split(b"\0")):
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace")[:100]
            found.append(f"{pid}: {shown}")
    return found


def _daemon_started(sleep: str) -> bool:
    return bool(processes_with_argument(sleep))


def _kill_and_check(build: subprocess.Popen, tag: str, sleep: str) -> None:
    os.kill(build.pid, signal.SIGKILL)  # the build alone, as a lecturer's `kill -9 <pid>`
    build.wait()
    deadline = time.monotonic() + 3.0  # under one second idle; room for a loaded 2-core runner
    while survivors(tag, sleep) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = survivors(tag, sleep)
    for line in left:  # clean up after a failure, so that the next test starts clean
        with contextlib.suppress(OSError):
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
    assert left == [], "processes of the killed build still running:\n" + "\n".join(left)


def _start(tmp_path: Path, n: int, decks: int = 1) -> tuple[subprocess.Popen, str, str]:
    """A build of ``decks`` new decks (nothing cached) in a folder of its own; its tag and its daemon's argument."""
    folder = tmp_path / f"build-{n}"
    folder.mkdir()
    sleep = f"{7000 + n}.{random.randrange(10**6):06d}"  # seconds: a number no other sleep has
    names = []
    for d in range(decks):
        (folder / f"deck{d}.md").write_text(DECK.format(n=f"{n}-{d}", sleep=f"{sleep}{d}" if d else sleep))
        names.append(f"deck{d}.md")
    tag = f"test-{uuid.uuid4().hex}"
    env = dict(os.environ, ATTNSLIDES_BUILD=tag)  # every process of the build inherits it
    build = subprocess.Popen([ATTNSLIDES, "build", "--to", "docx", *names], cwd=folder, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return build, tag, sleep


def test_a_build_killed_once_its_block_started_a_daemon_leaves_nothing(tmp_path):
    build, tag, sleep = _start(tmp_path, 0)
    deadline = time.monotonic() + 60
    while not _daemon_started(sleep) and build.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    started = _daemon_started(sleep)
    time.sleep(0.5)  # the slow block is computing now
    _kill_and_check(build, tag, sleep)
    assert started, "the block's daemon never started"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_build_killed_at_a_random_moment_leaves_nothing(tmp_path, seed):
    random.seed(seed)
    build, tag, sleep = _start(tmp_path, seed)
    time.sleep(random.uniform(0.3, 6.0))  # reading the deck, starting the workers, running the blocks
    _kill_and_check(build, tag, sleep)


def test_a_multi_deck_build_killed_leaves_nothing(tmp_path):
    build, tag, sleep = _start(tmp_path, 9, decks=2)
    deadline = time.monotonic() + 60
    while not _daemon_started(sleep) and build.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    started = _daemon_started(sleep)
    time.sleep(0.5)
    _kill_and_check(build, tag, sleep)
    assert started, "the first deck's daemon never started"
