"""Child processes bounded and gone with the build (:mod:`filters.util.processes`): a time and a
memory limit, the build's mark, its janitor after ``kill -9``, a subreaper's leftovers, and pandoc
bounded on a caption it cannot read."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import ROOT, processes_with_argument

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")


def unique() -> str:
    """A number of seconds for ``sleep`` that no other process has in its command line."""
    return f"{9000 + random.randrange(1000)}.{random.randrange(10**6):06d}"


running = processes_with_argument  # (conftest) the daemons a test started, by their unique argument


def gone(argument: str, within: float = 3.0) -> bool:
    """Whether no process with ``argument`` is left ``within`` seconds (the janitor takes well under
    one on an idle machine; 3 s leaves room for a loaded 2-core CI runner)."""
    deadline = time.monotonic() + within
    while running(argument) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = running(argument)
    for pid in left:  # after a failure: clean up
        os.kill(pid, signal.SIGKILL)
    return not left


def guarded_script(argument: str, *, end: str) -> subprocess.Popen:
    """A Python process that, guarded, starts a daemon (its own session) sleeping ``argument``
    seconds, says "ready", then ends as ``end`` says ("exit" or "wait")."""
    code = textwrap.dedent(f"""
        import subprocess, time
        from filters.util.processes import guarded
        with guarded():
            subprocess.Popen(["sleep", "{argument}"], start_new_session=True)
            print("ready", flush=True)
            if "{end}" == "wait":
                time.sleep(60)
    """)
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_a_guarded_process_killed_by_sigkill_leaves_no_daemon():
    argument = unique()
    process = guarded_script(argument, end="wait")
    assert process.stdout.readline() == "ready\n" and running(argument)
    process.kill()
    process.wait()
    assert gone(argument)


def test_a_guarded_process_that_ends_leaves_no_daemon():
    argument = unique()
    process = guarded_script(argument, end="exit")
    assert process.stdout.readline() == "ready\n"
    assert process.wait(timeout=30) == 0
    assert gone(argument, within=0)


def test_a_child_past_its_time_is_killed_with_its_group():
    from filters.util.processes import run_bounded

    argument = unique()
    with pytest.raises(subprocess.TimeoutExpired):
        run_bounded(["sh", "-c", f"sleep {argument} & sleep {argument}"], timeout=0.5)
    assert gone(argument)


def test_a_child_past_its_memory_fails_to_allocate():
    from filters.util.processes import run_bounded

    done = run_bounded([sys.executable, "-c", "bytearray(1 << 30)"], timeout=60, memory=256 << 20)
    assert done.returncode != 0 and "MemoryError" in done.stderr
    assert run_bounded([sys.executable, "-c", "bytearray(1 << 20)"], timeout=60, memory=256 << 20).returncode == 0


def test_a_subreaper_kills_what_its_descendants_left_in_their_own_session():
    argument = unique()
    code = textwrap.dedent(f"""
        import os, time
        from filters.util.processes import become_subreaper, kill_descendants
        become_subreaper()
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execvp("sleep", ["sleep", "{argument}"])
            os._exit(0)
        os.wait()
        time.sleep(0.3)
        def sleeping():
            for pid in filter(str.isdigit, os.listdir('/proc')):
                try:
                    with open(f'/proc/{{pid}}/cmdline', 'rb') as file:
                        if b'{argument}' in file.read().split(bytes(1)):
                            return True
                except OSError:
                    pass
            return False
        print(sleeping())
        kill_descendants()
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0 and done.stdout == "True\n", done.stderr
    assert gone(argument, within=0)


def test_a_caption_pandoc_cannot_read_in_time_names_its_block(build_dirs, monkeypatch, tmp_path):
    """Regression: caption parsing started pandoc with no time limit; 25 nested brackets keep it
    busy for minutes."""
    import threading

    from conftest import filter_deck

    from filters.errors import BlockError
    from filters.util import pandoc

    monkeypatch.setattr(pandoc, "TEXT_TIME_LIMIT_S", 1.0)
    deck = tmp_path / "corchetes.md"
    deck.write_text("---\ntitle: Corchetes\nlang: es\n---\n\n# Uno\n\n```{.attention #a caption=\"" + "[" * 40
                    + "\"}\nel gato come\n```\n")
    outcome = []

    def run():
        try:
            filter_deck(deck, build_dirs, monkeypatch)
        except BlockError as exc:
            outcome.append(str(exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=120)  # without a limit pandoc reads on for minutes
    assert not thread.is_alive() and outcome, "pandoc was not stopped"
    assert "«Uno»" in outcome[0] and "for more than 1 s" in outcome[0]


@pytest.mark.parametrize("attempt", range(5))
def test_a_daemon_started_just_before_the_block_ends_is_killed(attempt):
    """``env -i setsid -f sleep N`` returns at once: its fork may not exist yet when the subreaper
    first looks, and its parent (setsid) may be gone, or a zombie, by then. The search goes on until
    it has found nothing twice, a moment apart."""
    argument = unique()
    code = textwrap.dedent(f"""
        import subprocess
        from filters.util.processes import become_subreaper, kill_descendants
        become_subreaper()
        subprocess.Popen(["env", "-i", "setsid", "-f", "sleep", "{argument}"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        kill_descendants()
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr
    time.sleep(0.2)  # a survivor, if any, has long been started by now
    assert gone(argument, within=0), "the daemon outlived the block"
