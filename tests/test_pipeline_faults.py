"""Trustworthy under faults and concurrency: a verified cache, safe and bounded LaTeX, builds that
survive being killed, take turns, and give the same bytes twice."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DECKS, ROOT, live, make_doc, needs_latex, slide

from filters.errors import BlockError
from filters.pandoc.filter import main

ATTNSLIDES = str(Path(sys.executable).with_name("attnslides"))


# ---- a verified cache ----


def the_entry() -> Path:
    """The one entry of the test's cache."""
    (entry,) = [p for p in Path("build/cache").iterdir() if p.is_dir() and not p.name.startswith(".")]
    return entry


@pytest.mark.parametrize("damage", ["truncate the picture", "edit a number", "garbage data", "remove the record",
                                    "remove the picture"])
def test_an_entry_that_does_not_verify_is_computed_again(build_dirs, capfd, damage):
    def build():
        main(make_doc(*slide("S", live("attention", "el gato come", ident="a")), meta=build_dirs))
        return json.loads(next(Path("build/figures/deck-de-prueba").glob("a-*.json")).read_text())

    first = build()
    entry = the_entry()
    if damage == "truncate the picture":
        picture = entry / "figure-1.pdf"
        picture.write_bytes(picture.read_bytes()[:100])
    elif damage == "edit a number":
        data = json.loads((entry / "data.json").read_text())
        data["weights"][0][0] = 0.99
        (entry / "data.json").write_text(json.dumps(data))
    elif damage == "garbage data":
        (entry / "data.json").write_text("{not json")
    elif damage == "remove the record":
        (entry / "sha256.json").unlink()
    else:
        (entry / "figure-1.pdf").unlink()
    capfd.readouterr()
    again = build()
    err = capfd.readouterr().err
    assert "is computed again" in err and "figure 1/1" in err, err
    assert again == first
    picture = next(Path("build/figures/deck-de-prueba").glob("a-*.pdf")).read_bytes()
    assert picture.startswith(b"%PDF") and picture.rstrip().endswith(b"%%EOF")


def test_a_caption_in_a_run_blocks_option_lines_does_not_run_it_again(build_dirs, capfd):
    import panflute as pf

    def build(caption):
        code = f"#| caption: {caption}\nplt.plot([1, 2, 3])"
        main(make_doc(*slide("S", pf.CodeBlock(code, identifier="r", classes=["python", "run"])), meta=build_dirs))
        return capfd.readouterr().err

    assert "figure 1/1" in build("Uno")
    assert "figure 1/1" not in build("Dos"), "only the caption changed"


def test_an_untitled_slide_is_named_by_the_slide_before_it(build_dirs):
    import panflute as pf

    doc = make_doc(*slide("Primera", pf.Para(pf.Str("x"))), pf.HorizontalRule(),
                   live("posenc", colour=1), meta=build_dirs)
    with pytest.raises(BlockError) as caught:
        main(doc)
    assert "«(a slide without a title, after «Primera»)»" in str(caught.value)


def test_a_line_of_code_that_runs_off_the_slide_is_named(build_dirs):
    import panflute as pf

    doc = make_doc(*slide("Código", pf.CodeBlock("x = " + "a" * 60, classes=["python"])),
                   *slide("S", live("posenc", num_positions=8, d_model=8, dims=0)), meta=build_dirs)
    with pytest.raises(BlockError) as caught:
        main(doc)
    assert "«Código»" in str(caught.value) and "64 characters" in str(caught.value)
    doc = make_doc(*slide("Código", pf.CodeBlock("x = " + "a" * 60, classes=["python"])),
                   meta={**build_dirs, "overflow": "warn"})
    main(doc)  # only a warning


def test_a_line_of_code_too_long_is_named_and_code_size_makes_room(build_dirs):
    """The message names the line (its number in the block, its start) and the code-size that fits
    it; at that size the deck builds, its code set in a group of that size; 16:9 holds more."""
    import panflute as pf

    code = "x = 1\n" + "total = sum([" + ", ".join(map(str, range(1, 17))) + "])\nprint(x)"  # line 2: 68 characters

    def deck(**meta):
        return make_doc(*slide("Código", pf.CodeBlock(code, classes=["python"])), meta={**build_dirs, **meta})

    with pytest.raises(BlockError) as caught:
        main(deck())
    message = str(caught.value)
    assert "«Código»" in message and "line 2 of the code block, «total = sum([1, 2, 3, 4, 5, 6,…»" in message
    assert "68 characters" in message and "at most 53" in message and "{code-size: scriptsize}" in message
    found = []
    main(deck(**{"code-size": "scriptsize"})).walk(lambda e, d: found.append(e.text) if isinstance(e, pf.RawBlock)
                                                   else None)
    assert found == ["\\begingroup\\scriptsize", "\\endgroup"]
    wide = deck()
    wide.metadata["aspectratio"] = pf.MetaString("169")
    main(wide)  # 69 characters fit a 16:9 frame's text
    with pytest.raises(BlockError, match="code-size"):
        main(deck(**{"code-size": "small"}))  # 58 fit
    from filters.blocks.page import page_for
    from filters.blocks.settings import CODE_SIZES, Settings
    from filters.pandoc.checks import code_columns

    assert [code_columns(s) for s in CODE_SIZES] == [96, 72, 65, 58, 53]
    assert [code_columns(s, page_for(None, "169")) for s in CODE_SIZES] == [124, 93, 84, 75, 69]
    # the deck's theme: Madrid's margins are narrower, Berkeley's sidebar takes a third of the width
    assert code_columns("normalsize", page_for("Madrid", "43")) == 59
    assert code_columns("normalsize", page_for("Berkeley", "43")) == 50
    import dataclasses

    help_text = next(f for f in dataclasses.fields(Settings) if f.name == "code_size").metadata["help"]
    assert all(re.search(rf"\b{n}\b", help_text) for n in (96, 72, 65, 58, 53, 93, 69)), "the help says the same"


def test_a_run_blocks_printed_tensor_wraps_to_the_slide(build_dirs):
    import panflute as pf

    doc = main(make_doc(*slide("S", pf.CodeBlock("print(torch.arange(40.0).reshape(2, 20))", classes=["python", "run"])),
                        meta=build_dirs))
    found = []
    doc.walk(lambda e, d: found.append(e.text) if isinstance(e, pf.CodeBlock) else None)
    assert found and max(len(line) for line in found[0].splitlines()) <= 53


# ---- the command line ----


def test_two_decks_of_one_name_would_overwrite_each_other(tmp_path, monkeypatch, capsys):
    from filters.cli.main import main as cli

    monkeypatch.chdir(tmp_path)
    for folder in ("a", "b"):
        Path(folder).mkdir()
        shutil.copy(DECKS / "steps-largest.md", Path(folder) / "deck.md")
    assert cli(["build", "a/deck.md", "b/deck.md"]) == 2
    assert "would write the same files" in capsys.readouterr().err and not Path("build").exists()


@pytest.mark.parametrize("second", ["the same name in NFD", "the name without its accent"])
def test_a_second_deck_of_one_output_name_is_refused_never_overwrites(tmp_path, monkeypatch, second):
    """Regression: ``Atención.md`` (é one character, NFC) and ``Atención.md`` (e and an accent, NFD),
    built one after the other, overwrote each other's outputs: both are ``Atencion``."""
    import unicodedata

    from filters.pipeline.build import build
    from filters.pipeline.errors import BuildError

    monkeypatch.chdir(tmp_path)
    first = Path(unicodedata.normalize("NFC", "Atención.md"))
    other = Path(unicodedata.normalize("NFD", "Atención.md") if second.endswith("NFD") else "Atencion.md")
    assert first.name != other.name
    first.write_text("---\ntitle: La primera\n---\n\n# Uno\n\nPrimera.\n")
    other.write_text("---\ntitle: La segunda\n---\n\n# Dos\n\nSegunda.\n")
    output = build(first, Path("build"), to="docx")
    made = output.read_bytes()
    with pytest.raises(BuildError) as info:
        build(other, Path("build"), to="docx")
    message = str(info.value)
    assert f"are those of another deck, {first.resolve()}" in message and "Rename one of the two" in message
    assert ("NFC and NFD" in message) == second.endswith("NFD")
    assert output.read_bytes() == made, "the first deck's output is untouched"
    assert build(Path(".") / first, Path("build"), to="docx") == output, "the same deck, named another way, builds"
    first.unlink()  # the first deck gone (renamed, deleted): the second takes the name
    assert build(other, Path("build"), to="docx") == output and output.read_bytes() != made


# ---- LaTeX: safe, bounded, survives being killed, takes turns, same bytes twice ----


def build_here(tmp_path, monkeypatch, name: str, text: str | None = None) -> Path:
    from filters.pipeline.build import build

    deck = tmp_path / name
    if text is None:
        shutil.copy2(DECKS / name, deck)  # with its time: the PDF carries it
    else:
        deck.write_text(text)
    monkeypatch.chdir(tmp_path)
    return tmp_path / build(Path(name), Path("build"))


@pytest.mark.e2e
@needs_latex
def test_latex_reads_no_file_outside_the_build(tmp_path, monkeypatch):
    from filters.pipeline.build import BuildError

    Path(tmp_path / "secreto.txt").write_text("NO-DEBE-SALIR")
    text = ("---\ntitle: Leer\nlang: es\n---\n\n# Leer un fichero\n\n"
            "Texto `\\input{/etc/hostname}`{=latex} y `\\input{../secreto.txt}`{=latex}.\n")
    with pytest.raises(BuildError) as caught:
        build_here(tmp_path, monkeypatch, "leer.md", text)
    assert "slide «Leer un fichero»" in str(caught.value) and "not found" in str(caught.value)
    assert not list(Path("build").glob("*.pdf"))


@pytest.mark.e2e
@needs_latex
def test_latex_reads_nothing_in_the_folder_a_deck_is_built_from_outside_its_project(tmp_path, monkeypatch):
    """Before: the folder the build ran from was on TeX's search path, whatever the deck's project:
    a deck from elsewhere, built from one's home folder, could `\\input` any file there."""
    from filters.pipeline.build import BuildError, build

    (tmp_path / "casa").mkdir()
    (tmp_path / "casa" / "secreto.tex").write_text("NO-DEBE-SALIR")
    (tmp_path / "descargas").mkdir()
    deck = tmp_path / "descargas" / "leer.md"
    deck.write_text("---\ntitle: Leer\nlang: es\n---\n\n# Leer un fichero\n\nTexto `\\input{secreto}`{=latex}.\n")
    monkeypatch.chdir(tmp_path / "casa")
    with pytest.raises(BuildError) as caught:
        build(deck, Path("build"), execute=False)
    assert "slide «Leer un fichero»" in str(caught.value) and "not found" in str(caught.value)
    assert not list(Path("build").glob("*.pdf"))


@pytest.mark.e2e
@needs_latex
def test_the_lecturers_own_pictures_are_found_beside_the_deck(tmp_path, monkeypatch):
    from PIL import Image

    (tmp_path / "img").mkdir()
    Image.new("RGB", (40, 30), "red").save(tmp_path / "img" / "logo.png")
    pdf = build_here(tmp_path, monkeypatch, "logo.md",
                     "---\ntitle: Logo\nlang: es\n---\n\n# Mi logo\n\n![El logo](img/logo.png){height=30%}\n")
    assert pdf.is_file()


@pytest.mark.e2e
@needs_latex
def test_a_latex_run_that_never_ends_is_stopped(tmp_path, monkeypatch):
    from filters.latex import passes
    from filters.pipeline import errors as build_module

    monkeypatch.setattr(passes, "LATEX_TIME_LIMIT_S", 4.0)
    start = time.monotonic()
    with pytest.raises(build_module.BuildError, match="ran for more than 4 s"):
        build_here(tmp_path, monkeypatch, "bucle.md",
                   "---\ntitle: Bucle\nlang: es\n---\n\n# Un bucle\n\n`\\loop\\iftrue\\repeat`{=latex}\n")
    assert time.monotonic() - start < 60
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-f", "bucle.tex"], capture_output=True, text=True).stdout.split()
    assert not left, "LaTeX was stopped with latexmk"


@pytest.mark.e2e
@needs_latex
@pytest.mark.parametrize("deck", [DECKS / "outputs.md", ROOT / "slides" / "transformers-1.md"], ids=["outputs", "lecture"])
def test_two_clean_builds_give_the_same_bytes(tmp_path, monkeypatch, deck):
    from filters.pipeline.build import build

    shutil.copy2(deck, tmp_path / deck.name)  # with its time, which the PDF carries outside git
    monkeypatch.chdir(tmp_path)
    built = []
    for _ in range(2):
        shutil.rmtree(tmp_path / "build", ignore_errors=True)  # clean: no cache, no auxiliaries
        pdf = build(Path(deck.name), Path("build"))
        built.append({p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "build").rglob("*")
                      if p.is_file() and p.suffix in (".pdf", ".json", ".tex", ".svg", ".png")})
    first, second = built
    assert (tmp_path / pdf).is_file() and first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []


def attnslides(*args, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([ATTNSLIDES, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


@pytest.mark.e2e
@needs_latex
@pytest.mark.parametrize("moment", ["filter", "latex", "late latex"])
def test_a_build_killed_at_any_moment_is_followed_by_a_correct_one(tmp_path, moment):
    shutil.copy(DECKS / "outputs.md", tmp_path / "deck.md")
    if moment != "filter":  # figures cached first: the kill lands in LaTeX
        assert attnslides("build", "deck.md", cwd=tmp_path).wait(timeout=300) == 0
        (tmp_path / "deck.md").write_text((tmp_path / "deck.md").read_text() + "\n# Otra\n\nMás texto.\n")
    build = attnslides("build", "deck.md", cwd=tmp_path)
    marker = tmp_path / "build" / "deck.running"
    deadline = time.monotonic() + 120
    if moment == "filter":
        while not list((tmp_path / "build" / "cache").glob(".tmp-*")) and time.monotonic() < deadline:
            time.sleep(0.01)
    else:
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.6 if moment == "late latex" else 0.05)
    os.killpg(build.pid, signal.SIGKILL)
    build.wait()
    rebuild = attnslides("build", "deck.md", cwd=tmp_path)
    _, err = rebuild.communicate(timeout=300)
    assert rebuild.returncode == 0, err
    text = subprocess.run(["pdftotext", str(tmp_path / "build" / "deck.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Un mapa de atención" in text and ("Más texto" in text or moment == "filter")


@pytest.mark.e2e
@needs_latex
def test_three_builds_of_one_deck_at_once_all_succeed(tmp_path):
    shutil.copy(DECKS / "outputs.md", tmp_path / "deck.md")
    builds = [attnslides("build", "deck.md", cwd=tmp_path) for _ in range(3)]
    results = [b.communicate(timeout=600) for b in builds]
    assert [b.returncode for b in builds] == [0, 0, 0], [err for _, err in results]
    text = subprocess.run(["pdftotext", str(tmp_path / "build" / "deck.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Un mapa de atención" in text


@pytest.mark.e2e
@needs_latex
def test_lualatex_lua_reaches_no_file_outside_the_project(tmp_path, monkeypatch):
    """Found by a hostile review: kpathsea's paranoid mode does not cover Lua's io.open."""
    outside = tmp_path.parent / f"{tmp_path.name}-fuera"
    outside.mkdir()
    (outside / "secreto.txt").write_text("NO-DEBE-SALIR")
    lua = (f"local f = io.open('{outside / 'secreto.txt'}'); tex.print(f and f:read('*l') or 'NEGADO'); "
           f"local g = io.open('{outside / 'escrito.txt'}', 'w'); if g then g:write('x'); g:close() end")
    text = f"---\ntitle: Lua\nlang: es\n---\n\n# Lua 中文\n\nTexto `\\directlua{{{lua}}}`{{=latex}}.\n"
    pdf = build_here(tmp_path, monkeypatch, "lua.md", text)
    shown = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    assert "NEGADO" in shown and "NO-DEBE-SALIR" not in shown
    assert not (outside / "escrito.txt").exists()


def test_a_project_copied_whole_with_its_build_folder_builds(tmp_path, monkeypatch):
    """Regression: ``cp -a src victim`` copies ``build/.deck.deck``, which names ``src/deck.md``; a
    build in the copy was refused, claiming the two plain ``deck.md`` differed in their accents'
    encoding. A record naming another project's deck is stale."""
    from filters.pipeline.build import build

    src = tmp_path / "src"
    src.mkdir()
    (src / "deck.md").write_text("---\ntitle: T\n---\n\n# Uno\n\nTexto.\n")
    monkeypatch.chdir(src)
    build(Path("deck.md"), Path("build"), to="docx")
    shutil.copytree(src, tmp_path / "victim", symlinks=True)
    monkeypatch.chdir(tmp_path / "victim")
    assert build(Path("deck.md"), Path("build"), to="docx") == Path("build/deck.docx")
    assert Path("build/.deck.deck").read_bytes() == os.fsencode(tmp_path / "victim" / "deck.md")


def test_two_decks_of_one_file_name_in_one_project_are_named_plainly(tmp_path, monkeypatch):
    from filters.pipeline.build import build
    from filters.pipeline.errors import BuildError

    monkeypatch.chdir(tmp_path)
    for folder in ("a", "b"):
        Path(folder).mkdir()
        Path(folder, "deck.md").write_text(f"# {folder}\n\nTexto.\n")
    build(Path("a/deck.md"), Path("build"), to="docx")
    with pytest.raises(BuildError) as info:
        build(Path("b/deck.md"), Path("build"), to="docx")
    message = str(info.value)
    assert "one file name, in two folders" in message and "NFC" not in message
    assert str(tmp_path / "a" / "deck.md") in message


# ---- a failed build keeps what it finished ----

_SLOW_AND_BROKEN = """---
title: Keep going
lang: en
attnslides:
  jobs: {jobs}
---

# A slow block

```{{.python .run #slow}}
import time
time.sleep(3)
plt.plot([0, 1], [1, 0])
```

# A broken block

```{{.python .run #broken}}
{broken}
```
"""


def _computed(err: str) -> list[str]:
    """The blocks a build computed, by the progress lines it printed ("figure 1/2 «slide» .python …")."""
    return [line.split("»")[0].split("«")[1] for line in err.splitlines() if "figure " in line and "/" in line
            and line.startswith("attnslides: figure ")]


def test_a_failed_build_keeps_the_figures_it_finished(tmp_path, monkeypatch, capfd):
    """One worker: the slow block finishes, then the broken one fails. The next build, with it fixed,
    computes only the fixed block."""
    from filters.cli.main import main as cli

    monkeypatch.chdir(tmp_path)
    Path("deck.md").write_text(_SLOW_AND_BROKEN.format(jobs=1, broken="raise ValueError('not yet')"))
    assert cli(["build", "--to", "revealjs", "deck.md"]) == 1
    err = capfd.readouterr().err
    assert "ValueError: not yet" in err and _computed(err) == ["A slow block"], err
    Path("deck.md").write_text(_SLOW_AND_BROKEN.format(jobs=1, broken="plt.plot([0, 1], [0, 1])"))
    assert cli(["build", "--to", "revealjs", "deck.md"]) == 0
    assert _computed(capfd.readouterr().err) == ["A broken block"]


def test_keep_going_lets_the_figures_in_flight_finish(tmp_path, monkeypatch, capfd):
    """Two workers: the broken block fails while the slow one still computes. With --keep-going the
    slow one finishes (its entry is published) before the build stops with the error; the next
    build, with the broken block fixed, computes only that one."""
    from filters.cli.main import main as cli

    monkeypatch.chdir(tmp_path)
    Path("deck.md").write_text(_SLOW_AND_BROKEN.format(jobs=2, broken="raise ValueError('not yet')"))
    assert cli(["build", "--to", "revealjs", "--keep-going", "deck.md"]) == 1
    err = capfd.readouterr().err
    assert "deck.md:18, slide «A broken block»" in err and "ValueError: not yet" in err, err
    assert _computed(err) == ["A slow block"], err
    assert not Path("build/deck-html/index.html").exists(), "the build still fails"
    Path("deck.md").write_text(_SLOW_AND_BROKEN.format(jobs=2, broken="plt.plot([0, 1], [0, 1])"))
    assert cli(["build", "--to", "revealjs", "deck.md"]) == 0
    assert _computed(capfd.readouterr().err) == ["A broken block"]
