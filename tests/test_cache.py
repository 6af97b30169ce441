"""The content cache: what changes a key, warm builds that import nothing heavy, parallel misses,
two builds at once, and a build killed half-way. No test here asserts a time."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import live, make_doc, slide

from filters.cache import Cache, key_for
from filters.filter import main
from filters.options import AttentionSpec, PosencSpec

ROOT = Path(__file__).resolve().parent.parent
SENTENCE = "el gato se sentó en la alfombra"


# ---- what goes into a key ----


def test_key_changes_with_options_format_and_device_but_not_caption():
    base = key_for(AttentionSpec(), fmt="latex/pdf", device="cpu")
    assert key_for(AttentionSpec(), fmt="latex/pdf", device="cpu", lang="es") != base, "labels change the picture"
    assert key_for(AttentionSpec(caption="otra", alt="x", height="50%"), fmt="latex/pdf", device="cpu") == base
    assert key_for(AttentionSpec(seed=1), fmt="latex/pdf", device="cpu") != base
    assert key_for(AttentionSpec(), fmt="revealjs/svg", device="cpu") != base
    assert key_for(AttentionSpec(), fmt="latex/pdf", device="cuda") != base


KEY_SCRIPT = """
from filters.cache import key_for
from filters.options import AttentionSpec, PosencSpec
print(key_for(AttentionSpec(), fmt="latex/pdf", device="cpu"), key_for(PosencSpec(), fmt="latex/pdf", device="cpu"))
"""


def test_key_changes_with_the_engine_source_it_uses(tmp_path):
    """Edit a copy of the code: an attention-engine edit changes .attention's key, not .posenc's."""
    for package in ("engine", "filters"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))

    def keys():
        env = dict(os.environ, PYTHONPATH=str(tmp_path), PANDOC_VERSION="3.9")
        out = subprocess.run([sys.executable, "-c", KEY_SCRIPT], cwd=tmp_path, env=env, capture_output=True,
                             text=True, check=True).stdout.split()
        return out

    attention, posenc = keys()
    with open(tmp_path / "engine" / "attention.py", "a") as f:
        f.write("\n# an edit of the attention engine\n")
    attention2, posenc2 = keys()
    assert attention2 != attention and posenc2 == posenc
    with open(tmp_path / "filters" / "render.py", "a") as f:
        f.write("\n# an edit of the renderer\n")
    assert all(new != old for new, old in zip(keys(), (attention2, posenc2)))


# ---- warm builds are light ----

WARM_SCRIPT = """
import sys, json
import panflute as pf
from filters.filter import main
doc = pf.Doc(pf.Header(pf.Str("S"), level=1),
             pf.CodeBlock("", identifier="p", classes=["posenc"], attributes={"num_positions": "10", "d_model": "8", "dims": "0"}),
             pf.CodeBlock("el gato", identifier="a", classes=["attention"]),
             pf.CodeBlock("", identifier="s", classes=["attention-steps"]),
             metadata={"lang": "es", "attnslides": {"figures-dir": sys.argv[1] + "/fig", "cache-dir": sys.argv[1] + "/cache", "jobs": 1}},
             format="beamer")
main(doc)
print(json.dumps(sorted(m for m in ("torch", "matplotlib", "numpy") if m in sys.modules)))
"""


def test_warm_build_imports_neither_torch_nor_matplotlib(tmp_path):
    def run():
        done = subprocess.run([sys.executable, "-c", WARM_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                              check=True, env=dict(os.environ, PANDOC_VERSION="3.9"))
        return json.loads(done.stdout), done.stderr

    cold, cold_err = run()
    assert "torch" in cold and "matplotlib" in cold, "the cold build computed in this process (jobs: 1)"
    assert "figure 3/3" in cold_err, "a cold build reports its progress"
    warm, warm_err = run()
    assert warm == [], f"a warm build imported {warm}"
    assert warm_err == "", "a warm build is quiet"


# ---- parallel misses equal a serial run ----


def test_parallel_misses_equal_a_serial_run(tmp_path):
    def build(jobs):
        meta = {"figures-dir": str(tmp_path / f"fig{jobs}"), "cache-dir": str(tmp_path / f"cache{jobs}"), "jobs": jobs}
        main(make_doc(*slide("A", live("attention", SENTENCE, ident="a"), live("attention", "hola mundo", ident="b", causal=1)),
                      *slide("B", live("posenc", ident="p", num_positions=30), live("attention-steps", ident="s", seed=2)),
                      meta=meta))
        return {p.name: p.read_bytes() for p in sorted((tmp_path / f"fig{jobs}" / "deck-de-prueba").iterdir())}

    serial, parallel = build(1), build(2)
    assert serial.keys() == parallel.keys() and len(serial) == 7
    for name in serial:
        if name.endswith(".json"):
            assert json.loads(serial[name]) == json.loads(parallel[name]), name
        else:
            assert serial[name] == parallel[name], f"{name}: the same picture, byte for byte"


# ---- entries are atomic ----


def test_an_unfinished_entry_is_never_trusted_and_clean_removes_it(tmp_path):
    cache = Cache(tmp_path)
    staging = cache.staging("abc")
    (staging / "figure.pdf").write_bytes(b"%PDF half")
    assert cache.entry("abc") is None and cache.keys() == set()
    assert Cache(tmp_path).clean()["temporary"] == 1 and not staging.exists()


def test_two_publishers_of_one_entry_both_succeed(tmp_path):
    cache = Cache(tmp_path)
    first, second = cache.staging("k"), cache.staging("k")
    for folder, text in ((first, "1"), (second, "2")):
        (folder / "data.json").write_text(text)
    cache.publish(first, "k")
    cache.publish(second, "k")  # lost the race: theirs stays, ours is dropped
    assert (cache.entry("k") / "data.json").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


# ---- whole builds: at once, and killed half-way ----

needs_latex = pytest.mark.skipif(not shutil.which("latexmk") or not shutil.which("pdftotext"),
                                 reason="needs latexmk and pdftotext: run `make setup`")

DECK = """\
---
title: Caché
lang: es
attnslides:
  cache-dir: shared-cache
---

# Ejemplo

```{.attention-steps #ej seed=SEED}
```

# Codificación

```{.posenc #pe num_positions=1000 d_model=256 dims="0,1,64"}
```

# Atención

```{.attention #at seed=SEED}
el gato se sentó en la alfombra
```
"""


def attnslides(*args, cwd):
    return subprocess.Popen([str(Path(sys.executable).with_name("attnslides")), *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def worked_numbers_in_pdf(pdf: Path, data: Path) -> bool:
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    weights = json.loads(data.read_text())["weights"]
    return all(f"{x:.2f}" in text for row in weights for x in row)


@needs_latex
@pytest.mark.e2e
def test_two_builds_at_once_share_one_cache(tmp_path):
    for name, seed in (("uno", 1), ("dos", 2)):
        (tmp_path / f"{name}.md").write_text(DECK.replace("SEED", str(seed)).replace("#ej", f"#ej-{name}")
                                             .replace("#pe", f"#pe-{name}").replace("#at", f"#at-{name}"))
    builds = [attnslides("build", f"{name}.md", "--out", f"out-{name}", cwd=tmp_path) for name in ("uno", "dos")]
    for build in builds:
        _, err = build.communicate(timeout=300)
        assert build.returncode == 0, err
    for name in ("uno", "dos"):
        assert worked_numbers_in_pdf(tmp_path / f"out-{name}" / f"{name}.pdf", tmp_path / "build" / "figures" / name / f"ej-{name}.json")
    cache = Cache(tmp_path / "shared-cache")
    assert len(cache.keys()) == 5, "the .posenc entry is shared, the others are per seed"
    assert not list(cache.root.glob(".tmp-*"))


@needs_latex
@pytest.mark.e2e
def test_a_build_killed_half_way_then_rebuilt_gives_the_right_pdf(tmp_path):
    (tmp_path / "deck.md").write_text(DECK.replace("SEED", "4"))
    cache = tmp_path / "shared-cache"
    build = attnslides("build", "deck.md", cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not list(cache.glob(".tmp-*")) and build.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # wait until an entry is being written
    os.killpg(build.pid, signal.SIGKILL)
    build.wait()
    for entry in Cache(cache).keys():  # whatever it left is complete or not an entry at all
        assert (cache / entry / "data.json").is_file()

    rebuild = attnslides("build", "deck.md", cwd=tmp_path)
    _, err = rebuild.communicate(timeout=300)
    assert rebuild.returncode == 0, err
    assert worked_numbers_in_pdf(tmp_path / "build" / "deck.pdf", tmp_path / "build" / "figures" / "deck" / "ej.json")
    data = json.loads((tmp_path / "build" / "figures" / "deck" / "pe.json").read_text())
    assert len(data["encoding"]) == 1000 and len(data["encoding"][0]) == 256


@needs_latex
@pytest.mark.e2e
def test_ctrl_c_during_latex_then_rebuild_gives_the_pdf(tmp_path):
    """Regression: latexmk trusted the record of an interrupted run and refused to build again."""
    (tmp_path / "deck.md").write_text(DECK.replace("SEED", "5"))
    log = tmp_path / "build" / "deck.log"
    build = attnslides("build", "deck.md", cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not log.exists() and build.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # wait until LaTeX has started
    os.killpg(build.pid, signal.SIGINT)
    _, err = build.communicate(timeout=60)
    assert "Traceback" not in err
    rebuild = attnslides("build", "deck.md", cwd=tmp_path)
    _, err = rebuild.communicate(timeout=300)
    assert rebuild.returncode == 0, err
    assert worked_numbers_in_pdf(tmp_path / "build" / "deck.pdf", tmp_path / "build" / "figures" / "deck" / "ej.json")
