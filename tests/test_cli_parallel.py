"""Several decks built at once (:mod:`filters.cli.parallel`): the cores shared between decks and
their workers, and each deck's output printed whole; and several files built as one deck (``-o``)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs_latex

ATTNSLIDES = str(Path(sys.executable).with_name("attnslides"))


class FakeProcess:
    """A process that ends at once, well, having printed nothing."""

    started: list[list[str]] = []

    def __init__(self, command, **kwargs):
        FakeProcess.started.append([str(c) for c in command])
        self.pid, self.returncode = 999999, None
        self.stdout, self.stdin = io.StringIO(""), io.BytesIO()

    def poll(self):
        self.returncode = 0
        return 0

    def wait(self, timeout=None):
        return self.poll()

    def kill(self):
        pass

    terminate = kill


@pytest.mark.parametrize(("cores", "decks", "parallel", "jobs"), [(8, 4, 0, 2), (8, 3, 0, 2), (2, 5, 0, 1), (16, 2, 0, 8),
                                                                  (8, 4, 2, 4)])
def test_decks_and_their_workers_share_the_cores(tmp_path, monkeypatch, cores, decks, parallel, jobs):
    """Regression: 10 decks in one build started decks × workers processes (cores²)."""
    from filters.cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    monkeypatch.setattr(subprocess, "Popen", FakeProcess)
    FakeProcess.started = []
    names = [f"d{n}.md" for n in range(decks)]
    for name in names:
        Path(name).write_text("# A\n")
    assert main(["build", *names, *(["--parallel", str(parallel)] if parallel else [])]) == 0
    builds = [c for c in FakeProcess.started if "build" in c]
    assert len(builds) == decks
    assert all(c[c.index("--jobs") + 1] == str(jobs) for c in builds), builds


@pytest.mark.parametrize(("cores", "share", "workers", "expected"), [(8, 2, 0, (2, 1)), (8, 0, 0, (3, 2)), (8, 1, 4, None),
                                                                     (2, 0, 64, (2, 1))])
def test_a_decks_workers_never_outnumber_its_cores(monkeypatch, cores, share, workers, expected):
    import torch

    from filters.workers import jobs as jobs_module

    monkeypatch.setattr(torch, "set_num_threads", lambda n: seen.append(("threads", n)))

    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    seen = []
    monkeypatch.setattr(jobs_module, "_Pool", lambda jobs, workers, threads, progress, *_: seen.append((workers, threads))
                        or type("P", (), {"run": lambda self: None})())
    monkeypatch.setattr(jobs_module, "run_job", lambda job: seen.append("here") or 0.0)
    work = [jobs_module.Job("run", None, f"k{n}", "", "", "cpu", "es", None, executes=n == 0) for n in range(3)]
    jobs_module.compute_all(work if expected else [replace_executes(j) for j in work], workers=workers, cores=share)
    assert seen == ([expected] if expected else [("threads", 1)] * (torch.get_num_threads() > 1) + ["here"] * 3)


def replace_executes(job):
    from dataclasses import replace

    return replace(job, executes=False)


DECK = """---
title: Mazo {name}
lang: es
---

# Habla

```{{.python .run #habla}}
import sys, time
for n in range(6):
    print("{name}", n, file=sys.stderr, flush=True)
    time.sleep(0.3)
```
"""


@pytest.mark.e2e
def test_one_decks_lines_never_interleave_with_anothers(tmp_path):
    """Regression: decks built at once printed their lines into each other's."""
    for name in ("uno", "dos"):
        (tmp_path / f"{name}.md").write_text(DECK.format(name=name))
    done = subprocess.run([ATTNSLIDES, "build", "--to", "docx", "--parallel", "2", "uno.md", "dos.md"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    owners = [line.split()[0] for line in done.stderr.splitlines() if line.split()[:1] in (["uno"], ["dos"])]
    assert sorted(owners) == ["dos"] * 6 + ["uno"] * 6
    assert owners in (["uno"] * 6 + ["dos"] * 6, ["dos"] * 6 + ["uno"] * 6), done.stderr


# ---- several files, one deck: attnslides build part1.md part2.md -o lecture.pdf ----

_PART_1 = "---\ntitle: Two parts\nlang: en\n---\n\n# Part one\n\nHello from part one.\n\n" \
          "```{.posenc num_positions=8 d_model=8 dims=0}\n```\n"
_PART_2 = "# Part two\n\nHello from part two.\n\n```{{.attention seed=1{bad}}}\nthe cat sat\n```\n"


@pytest.mark.e2e
@needs_latex
def test_several_files_with_o_make_one_deck(tmp_path, monkeypatch, capfd):
    """Both files' frames in one PDF, at -o's path, its other files named after it in build/; an
    error names the file and line of the block (part2.md's fence is its line 5)."""
    from filters.cli.main import main as cli

    monkeypatch.chdir(tmp_path)
    Path("part1.md").write_text(_PART_1)
    Path("part2.md").write_text(_PART_2.format(bad=" bogus=3"))
    assert cli(["build", "part1.md", "part2.md", "-o", "lecture.pdf"]) == 1
    err = capfd.readouterr().err
    assert "part2.md:5, slide «Part two», block .attention (live block 2 of 2): option 'bogus'" in err, err
    Path("part2.md").write_text(_PART_2.format(bad=""))
    assert cli(["build", "part1.md", "part2.md", "-o", "lecture.pdf"]) == 0
    text = subprocess.run(["pdftotext", "lecture.pdf", "-"], capture_output=True, text=True, check=True).stdout
    assert text.index("Hello from part one.") < text.index("Hello from part two."), text
    assert Path("build/lecture.pdf").is_file() and {p.name for p in Path("build/figures").iterdir()} == {"lecture"}
    assert not Path("build/part1.pdf").exists() and not Path("build/part2.pdf").exists()


def test_a_file_of_the_deck_outside_its_project_is_refused(tmp_path, monkeypatch, capfd):
    from filters.cli.main import main as cli

    (tmp_path / "project" / ".git").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "project" / "part1.md").write_text(_PART_1)
    (tmp_path / "elsewhere" / "part2.md").write_text(_PART_2.format(bad=""))
    monkeypatch.chdir(tmp_path / "project")
    assert cli(["build", "--to", "revealjs", "part1.md", "../elsewhere/part2.md", "-o", "lecture.html"]) == 1
    err = capfd.readouterr().err
    assert "../elsewhere/part2.md: outside the deck's project" in err and "--allow-outside-files" in err, err
    assert not Path("build/lecture-html").exists()
    assert cli(["build", "--to", "revealjs", "part1.md", "../elsewhere/part2.md", "-o", "lecture.pdf"]) == 2
    assert "--to revealjs makes a .html file" in capfd.readouterr().err
