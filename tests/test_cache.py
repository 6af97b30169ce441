"""The content cache: what changes a key, warm builds that import nothing heavy, parallel misses,
two builds at once, and a build killed half-way. No test here asserts a time."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, live, make_doc, needs_latex, slide

from filters.cache.keys import key_for
from filters.cache.store import CLEAN_GRACE_S, Cache
from filters.kinds import KINDS
from filters.kinds.attention import AttentionOptions
from filters.pandoc.filter import main

SENTENCE = "el gato se sentó en la alfombra"
ATTENTION = KINDS["attention"]


# ---- what goes into a key ----


def key(options=None, kind=ATTENTION, **where):
    where = {"fmt": "latex/pdf", "device": "cpu", "pandoc": "3.9", **where}
    return key_for(kind, options or kind.options(), **where)


def test_key_changes_with_options_format_and_device_but_not_caption():
    base = key()
    assert key(lang="es") != base, "labels change the picture"
    assert key(AttentionOptions(caption="otra", alt="x")) == base
    assert key(AttentionOptions(height="50%")) != base, "fonts are sized for the height on the slide"
    assert key(AttentionOptions(seed=1)) != base
    assert key(fmt="revealjs/svg") != base
    assert key(device="cuda") != base


# The starter deck, one block of every kind; the filter prints one progress line per figure drawn.
ALL_KINDS_SCRIPT = """
import panflute as pf, pypandoc
from filters.pandoc.filter import main
from filters.cli.starter import starter_deck
doc = pf.convert_text(starter_deck("es"), standalone=True, pandoc_path=pypandoc.get_pandoc_path())
doc.format = "beamer"
doc.metadata["attnslides"] = {"figures-dir": "build/fig", "cache-dir": "build/cache", "jobs": 1}
main(doc)
"""


@pytest.fixture
def code_copy(tmp_path):
    """A copy of engine/ and filters/ to edit, and a way to build a deck of every kind with it."""
    for package in ("engine", "filters"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))

    def drawn() -> list[str]:
        """Build; return the kinds whose figure was computed (missed the cache)."""
        env = dict(os.environ, PYTHONPATH=str(tmp_path), PANDOC_VERSION="3.9", MPLCONFIGDIR=str(tmp_path / "mpl"))
        done = subprocess.run([sys.executable, "-c", ALL_KINDS_SCRIPT], cwd=tmp_path, env=env, capture_output=True,
                              text=True, check=True)
        return sorted(line.split("» .")[1].split()[0] for line in done.stderr.splitlines() if " figure " in line)

    def edit(path: str, old: str, new: str) -> None:
        file = tmp_path / path
        text = file.read_text()
        assert old in text, f"{old!r} is not in {path}"
        file.write_text(text.replace(old, new, 1))

    return drawn, edit


def test_editing_one_kind_redraws_only_that_kind(code_copy):
    drawn, edit = code_copy
    runnable = [kind for kind in KINDS.values() if not kind.unavailable()]  # the model may be missing
    assert len(drawn()) == len(runnable), "the first build draws every kind"
    assert drawn() == [], "the second build draws nothing"
    edit("filters/kinds/scaling.py", 'lines += ax.plot(d_k, scaled, "s-"', 'lines += ax.plot(d_k, scaled, "D-"')
    assert drawn() == ["scaling"]


def test_text_for_people_redraws_nothing(code_copy):
    """A help string, a default caption, a comment or a docstring never reaches a picture."""
    drawn, edit = code_copy
    drawn()
    edit("filters/blocks/options.py", 'help="decimals of the weight printed in each cell"',
         'help="decimals printed in each cell"')
    edit("filters/kinds/attention.py", "Pesos de auto-atención de", "Pesos de la auto-atención de")
    edit("filters/kinds/posenc.py", "# a fast pair and a slower pair", "# one fast pair and one slower pair")
    edit("engine/attention.py", "Scaled dot-product attention, self-attention", "Scaled dot-product attention and self-attention")
    assert drawn() == []


def test_editing_shared_code_redraws_the_kinds_that_use_it(code_copy):
    drawn, edit = code_copy
    drawn()
    edit("filters/figures/heatmap.py", 'return "black" if', 'return "black"  if')  # white space only: the same tree
    assert drawn() == []
    edit("filters/figures/heatmap.py", "> 0.45 else", "> 0.5 else")  # the heatmaps' text colour
    assert drawn() == ["attention", "block", "model-view", "multihead", "permutation", "run", "trained-attention"]
    edit("engine/positional.py", "base: float = 10000.0,\n    *,", "base: float = 10000.0 + 0,\n    *,")
    assert drawn() == ["attention", "block", "multihead", "permutation", "posenc", "posenc-compare", "run",
                       "trained-attention"]


KEYS_SCRIPT = """
import json, sys
from pathlib import Path
from filters.cache.keys import key_for
from filters.cache.sources import Sources
from filters.kinds import KINDS
sources = Sources(Path(sys.argv[1]))
print(json.dumps({name: key_for(kind, kind.options(), fmt="latex/pdf", device="cpu", pandoc="3.9",
                                  sources=sources)
                  for name, kind in KINDS.items()}))
sources.save()
"""


@pytest.fixture
def keys_of_copy(tmp_path):
    """A copy of engine/ and filters/ to edit, and the key of every kind (default options) computed
    from it in a fresh process, with the module record of a cache (.sources.json) kept between calls."""
    for package in ("engine", "filters"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))

    def keys() -> dict[str, str]:
        env = dict(os.environ, PYTHONPATH=str(tmp_path), PANDOC_VERSION="3.9", MPLCONFIGDIR=str(tmp_path / "mpl"))
        done = subprocess.run([sys.executable, "-c", KEYS_SCRIPT, str(tmp_path / "sources.json")], cwd=tmp_path,
                              env=env, capture_output=True, text=True, check=True)
        return json.loads(done.stdout)

    return tmp_path, keys


def changed(before: dict, after: dict) -> list[str]:
    return sorted(name for name in before if before[name] != after[name])


def test_saving_and_package_code_is_in_every_key(keys_of_copy):
    """Regression: an edit of render.save (every picture goes through it) or of a package's
    __init__.py (run before any module in it) changed no key, and old figures were reused."""
    root, keys = keys_of_copy
    base = keys()
    with open(root / "filters" / "figures" / "render.py", "a") as f:
        f.write("\nBACKGROUND = 'red'\n")
    after_render = keys()
    assert changed(base, after_render) == sorted(KINDS)
    with open(root / "engine" / "__init__.py", "a") as f:
        f.write("\nimport os as _os\n")
    assert changed(after_render, keys()) == sorted(KINDS)


def test_a_module_that_appears_later_is_followed(keys_of_copy):
    """Regression: the record of a module's imports (.sources.json) kept an import resolved against
    files that later changed: `from filters import tweak` first named a value in filters/__init__.py,
    then a new filters/tweak.py, whose edits no key saw."""
    root, keys = keys_of_copy
    scaling = root / "filters" / "kinds" / "scaling.py"
    anchor = "    from filters.figures.render import current_page, slide_figure\n"
    assert anchor in scaling.read_text()
    scaling.write_text(scaling.read_text().replace(anchor, anchor + "    from filters import tweak  # noqa: F401\n", 1))
    with open(root / "filters" / "__init__.py", "a") as f:
        f.write("\ntweak = 'white'\n")
    first = keys()
    (root / "filters" / "tweak.py").write_text("FACE = 'white'\n")
    second = keys()
    assert "scaling" in changed(first, second)
    (root / "filters" / "tweak.py").write_text("FACE = 'yellow'\n")
    assert changed(second, keys()) == ["scaling"]


def test_a_damaged_module_record_is_only_a_slower_build(keys_of_copy):
    root, keys = keys_of_copy
    base = keys()
    for damage in ("[]", '{"filters.options": {"sha256": 1}}', "not json"):
        (root / "sources.json").write_text(damage)
        assert keys() == base


def test_a_users_matplotlibrc_changes_figure_keys(tmp_path, monkeypatch):
    """Regression: a build with a serif matplotlibrc reused the sans-serif figures of an earlier build."""
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    steps = KINDS["attention-steps"]
    base, text = key(), key(kind=steps, fmt="text")
    rc = tmp_path / "serif.rc"
    rc.write_text("font.family: serif\n")
    monkeypatch.setenv("MATPLOTLIBRC", str(rc))
    assert key() != base and key(kind=steps, fmt="text") == text, "figures change, a text kind does not"
    serif = key()
    rc.write_text("font.family: serif\nfont.size: 11\n")
    assert key() not in (base, serif)
    monkeypatch.delenv("MATPLOTLIBRC")
    (tmp_path / "matplotlibrc").write_text("font.family: serif\n")  # ./matplotlibrc, as matplotlib reads it
    assert key() == serif


def test_the_renderer_honours_the_users_matplotlibrc(tmp_path):
    """The key follows the rc file because the figure does: a serif rc draws serif text."""
    script = ("import matplotlib; from matplotlib.figure import Figure; import matplotlib.style as s\n"
              "from filters.figures import STYLE\n"
              "with s.context(STYLE): print(Figure().add_subplot().set_title('x').get_fontfamily()[0])")
    (tmp_path / "rc").write_text("font.family: serif\n")
    env = dict(os.environ, MATPLOTLIBRC=str(tmp_path / "rc"), MPLCONFIGDIR=str(tmp_path / "mpl"))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "serif"


# ---- warm builds are light ----

WARM_SCRIPT = """
import sys, json
import panflute as pf
from filters.pandoc.filter import main
doc = pf.Doc(pf.Header(pf.Str("S"), level=1),
             pf.CodeBlock("", identifier="p", classes=["posenc"],
                          attributes={"num_positions": "10", "d_model": "8", "dims": "0"}),
             pf.CodeBlock("el gato", identifier="a", classes=["attention"]),
             pf.CodeBlock("", identifier="s", classes=["attention-steps"]),
             metadata={"lang": "es",
                       "attnslides": {"figures-dir": "build/fig", "cache-dir": "build/cache", "jobs": 1}},
             format="beamer")
main(doc)
print(json.dumps(sorted(m for m in ("torch", "matplotlib", "numpy") if m in sys.modules)))
"""


def test_warm_build_imports_neither_torch_nor_matplotlib(tmp_path):
    def run():
        done = subprocess.run([sys.executable, "-c", WARM_SCRIPT], capture_output=True, text=True, cwd=tmp_path,
                              check=True, env=dict(os.environ, PANDOC_VERSION="3.9",
                                                   PYTHONPATH=os.pathsep.join(sys.path)))
        return json.loads(done.stdout), done.stderr

    cold, cold_err = run()
    assert "torch" in cold and "matplotlib" in cold, "the cold build computed in this process (jobs: 1)"
    assert "figure 3/3" in cold_err, "a cold build reports its progress"
    warm, warm_err = run()
    assert warm == [], f"a warm build imported {warm}"
    assert warm_err == "", "a warm build is quiet"


# ---- parallel misses equal a serial run ----


def test_parallel_misses_equal_a_serial_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def build(jobs):
        meta = {"figures-dir": f"build/fig{jobs}", "cache-dir": f"build/cache{jobs}", "jobs": jobs}
        main(make_doc(*slide("A", live("attention", SENTENCE, ident="a"), live("attention", "hola mundo", ident="b", causal=1)),
                      *slide("B", live("posenc", ident="p", num_positions=30), live("attention-steps", ident="s", seed=2)),
                      meta=meta))
        return {p.name: p.read_bytes() for p in sorted((tmp_path / "build" / f"fig{jobs}" / "deck-de-prueba").iterdir())}

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
    assert Cache(tmp_path).clean()["temporary"] == 0 and staging.exists(), "young: perhaps a running build's"
    old = time.time() - CLEAN_GRACE_S - 1
    os.utime(staging, (old, old))
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


DECK = """\
---
title: Caché
lang: es
attnslides:
  cache-dir: build/shared-cache
---

# Ejemplo

```{.attention-steps #ej seed=SEED}
```

# Codificación

```{.posenc #pe num_positions=1000 d_model=250 dims="0,1,64"}
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
        data = tmp_path / "build" / "figures" / name / f"ej-{name}.json"
        assert worked_numbers_in_pdf(tmp_path / f"out-{name}" / f"{name}.pdf", data)
    cache = Cache(tmp_path / "build" / "shared-cache")
    assert len(cache.keys()) == 5, "the .posenc entry is shared, the others are per seed"
    assert not list(cache.root.glob(".tmp-*"))


@needs_latex
@pytest.mark.e2e
def test_a_build_killed_half_way_then_rebuilt_gives_the_right_pdf(tmp_path):
    (tmp_path / "deck.md").write_text(DECK.replace("SEED", "4"))
    cache = tmp_path / "build" / "shared-cache"
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
    assert len(data["encoding"]) == 1000 and len(data["encoding"][0]) == 250


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


# ---- clean and damaged records (moved with the store) ----


def test_clean_deletes_only_what_a_build_wrote_in_its_own_folder(build_dirs, tmp_path):
    from filters.cache.store import Cache

    main(make_doc(*slide("S", live("posenc", ident="pe", num_positions=8, d_model=8, dims=0)), meta=build_dirs))
    mine = [tmp_path / "deck.md", tmp_path / "notes.txt"]
    for path in mine:
        path.write_text("del profesor")
    for manifest in Path("build/cache/.manifests").glob("*.json"):  # a record that names other files
        record = json.loads(manifest.read_text())
        record["written"] += [str(p) for p in mine] + ["build/figures/deck-de-prueba/../../../deck.md"]
        record["figures"] = []
        manifest.write_text(json.dumps(record))
    Cache("build/cache").clean()
    assert all(path.read_text() == "del profesor" for path in mine)
    assert not list(Path("build/figures/deck-de-prueba").glob("pe*.pdf")), "its own unused figure is removed"


def test_clean_deletes_nothing_a_record_names_outside_the_project(build_dirs, tmp_path):
    from filters.cache.store import Cache

    victim = tmp_path.parent / f"{tmp_path.name}-victim"
    victim.mkdir()
    (victim / "thesis.pdf").write_text("years of work")
    manifests = tmp_path / "build" / "cache" / ".manifests"
    manifests.mkdir(parents=True)
    (manifests / "evil.json").write_text(json.dumps({"deck": "gone.md", "folder": str(victim), "keys": [],
                                                     "written": [str(victim / "thesis.pdf")], "figures": []}))
    Cache("build/cache").clean()
    assert (victim / "thesis.pdf").read_text() == "years of work"


@pytest.mark.parametrize("record", ['{"deck": "d.md", "written": 5}', '{"deck": "d.md", "keys": "7326"}', "[1, 2]"])
def test_a_manifest_of_the_wrong_shape_is_ignored_by_builds_and_clean(build_dirs, record):
    from filters.cache.store import Cache

    manifests = Path("build/cache/.manifests")
    manifests.mkdir(parents=True)
    (manifests / "raro.json").write_text(record)
    main(make_doc(*slide("S", live("posenc", ident="pe", num_positions=8, d_model=8, dims=0)), meta=build_dirs))
    assert Cache("build/cache").clean()["entries"] == 0, "the entry the build just made is young and used"
    main(make_doc(*slide("S", live("posenc", ident="pe", num_positions=8, d_model=8, dims=0)), meta=build_dirs))


def test_a_file_where_a_cache_entry_goes_is_replaced(build_dirs, capsys):
    from filters.cache.store import Cache

    main(make_doc(*slide("S", live("posenc", ident="pe", num_positions=8, d_model=8, dims=0)), meta=build_dirs))
    (key,) = Cache("build/cache").keys()
    shutil.rmtree(Path("build/cache") / key)
    (Path("build/cache") / key).write_text("junk")
    main(make_doc(*slide("S", live("posenc", ident="pe", num_positions=8, d_model=8, dims=0)), meta=build_dirs))
    assert (Path("build/cache") / key).is_dir() and "is not a folder" in capsys.readouterr().err


def _aged(cache: Path) -> None:
    """Make every entry of ``cache`` older than ``clean``'s grace time (as if built long ago)."""
    old = time.time() - CLEAN_GRACE_S - 60
    for path in cache.iterdir():
        os.utime(path, (old, old))


@pytest.mark.parametrize("written_by", ["this version", "an older version"])
def test_clean_run_from_another_folder_keeps_a_live_decks_cache(tmp_path, monkeypatch, written_by):
    """Regression: manifests held the deck's path relative to the project, and ``clean`` resolved it
    from the folder it ran in: run from elsewhere, it took every deck for deleted and removed their
    cache entries (and resolved their figure files in the wrong folder)."""
    from conftest import filter_deck

    project, elsewhere = tmp_path / "curso", tmp_path / "otro"
    for folder in (project, elsewhere):
        folder.mkdir()
    monkeypatch.chdir(project)
    (project / "clase.md").write_text("---\ntitle: Clase\nlang: es\n---\n\n# S\n\n"
                                      "```{.posenc #pe num_positions=8 d_model=8 dims=0}\n```\n")
    dirs = {"figures-dir": "build/figures", "cache-dir": "build/cache", "jobs": 1}
    filter_deck(Path("clase.md"), dirs, monkeypatch)
    cache = project / "build" / "cache"
    if written_by == "an older version":  # no absolute path, no identity: the deck's path is the project's
        for manifest in (cache / ".manifests").glob("*.json"):
            record = json.loads(manifest.read_text())
            manifest.write_text(json.dumps({k: v for k, v in record.items() if k not in ("path", "identity")}))
    _aged(cache)
    keys, figures = Cache(cache).keys(), sorted((project / "build" / "figures" / "clase").iterdir())
    # the other folder has files at the same relative places: not this deck's, never removed
    other = elsewhere / "build" / "figures" / "clase" / "pe-viejo.pdf"
    other.parent.mkdir(parents=True)
    other.write_text("de otro curso")
    monkeypatch.chdir(elsewhere)
    removed = Cache(cache).clean()
    assert removed["entries"] == removed["manifests"] == removed["figures"] == 0
    assert Cache(cache).keys() == keys and len(keys) == 1
    assert sorted((project / "build" / "figures" / "clase").iterdir()) == figures
    assert other.read_text() == "de otro curso"
    (project / "clase.md").unlink()  # the deck deleted: clean, still run from elsewhere, removes its things
    removed = Cache(cache).clean()
    assert (removed["entries"], removed["manifests"]) == (1, 1) and not Cache(cache).keys()
    assert not (project / "build" / "figures" / "clase").exists() and other.exists()
