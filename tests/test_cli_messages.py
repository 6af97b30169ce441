"""Messages a lecturer reads: where a device was asked for, a closed pipe, the --no-exec note."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT, live, make_doc, slide

from filters.errors import BlockError


def test_a_missing_device_names_where_it_was_asked_for_and_suggests_the_cpu(build_dirs, monkeypatch):
    import torch

    from filters.pandoc.filter import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BlockError) as info:
        main(make_doc(*slide("S", live("posenc", num_positions=8, d_model=8, dims=0)),
                      meta={**build_dirs, "device": "cuda"}))
    text = str(info.value)
    assert "in the deck's metadata" in text and "--device cpu" in text and "DEVICE=cuda" not in text


def test_options_into_a_closed_pipe_exits_quietly():
    shell = f"{sys.executable} -m filters.cli options | head -1; exit ${{PIPESTATUS[0]}}"
    done = subprocess.run(["bash", "-c", shell], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0 and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_the_no_exec_note_reads_as_a_sentence():
    from filters.kinds.run import NOT_RUN

    assert "(--no-exec, or execute: false)" in NOT_RUN["en"] and "—" not in NOT_RUN["en"] + NOT_RUN["es"]
