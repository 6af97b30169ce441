"""No state that lies: a LaTeX error in any file (the ``.vrb`` of a frame with code, a handout's
picture) names its slide and leaves the precompiled preamble alone, so the fixed deck's PDF is
byte for byte a clean build's; only TeX dying on the format marks it failed, and nothing transient
(a killed pass, a full disk) does; a PDF damaged since it was written is made again; what a killed
build left half-written is cleaned away."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import needs_latex

pytestmark = [pytest.mark.e2e, needs_latex]

# A frame with code is "fragile": Beamer writes its body to deck.vrb and LaTeX reads it from there,
# so LaTeX's error names deck.vrb, not deck.tex.
CODE = ("---\ntitle: Estado\nlang: es\n---\n\n# Primera\n\nHola.\n\n# Con código\n\n```python\nx = 1\n```\n\n"
        "Texto TAIL.\n")
BROKEN = CODE.replace("TAIL", "`\\nodefinido`{=latex}")
FIXED = CODE.replace("TAIL", "bien")


def build_in(folder: Path, text: str, *, to: str = "beamer") -> Path:
    """Build ``text`` as ``folder/deck.md`` (run from ``folder``, which the caller made current)."""
    from filters.pipeline.build import build

    deck = folder / "deck.md"
    if not deck.is_file() or deck.read_text() != text:
        deck.write_text(text)
    return folder / build(Path("deck.md"), Path("build"), to=to)


def formats(folder: Path, pattern: str) -> list[str]:
    return sorted(p.name for p in (folder / "build" / "formats").glob(pattern))


def clean_build_bytes(folder: Path, text: str, name: str = "clean", also: tuple[str, ...] = ()) -> bytes:
    """The PDF of ``text`` built from nothing (no build folder), in a folder of its own, with the
    files ``also`` names copied there."""
    clean = folder / name
    clean.mkdir()
    for file in ("deck.md", *also):
        shutil.copy2(folder / file, clean / file)  # with its time: the PDF carries the deck's day
    os.chdir(clean)
    try:
        return build_in(clean, text).read_bytes()
    finally:
        os.chdir(folder)


def test_an_error_in_a_frame_with_code_names_its_slide_and_leaves_the_format_alone(tmp_path, monkeypatch, capfd):
    from filters.pipeline.build import BuildError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(BuildError) as caught:
        build_in(tmp_path, BROKEN)
    assert "slide «Con código»: LaTeX: Undefined control sequence" in str(caught.value)
    assert formats(tmp_path, "*.failed") == [] and len(formats(tmp_path, "*.fmt")) == 1, "the deck's error, not TeX's"
    assert "precompiled" not in capfd.readouterr().err

    fixed = build_in(tmp_path, FIXED).read_bytes()
    assert "preloaded format=deck-preamble" in (tmp_path / "build" / "deck.log").read_text(), "from the format"
    assert fixed == clean_build_bytes(tmp_path, FIXED), "the fixed deck's PDF is a clean build's, byte for byte"


def test_an_error_in_a_file_the_frame_includes_names_its_slide(tmp_path, monkeypatch):
    from filters.pipeline.build import BuildError

    monkeypatch.chdir(tmp_path)
    (tmp_path / "parte.tex").write_text("Texto \\otronodefinido.\n")
    text = "---\ntitle: Incluir\nlang: es\n---\n\n# Primera\n\nHola.\n\n# Incluida\n\n`\\input{parte.tex}`{=latex}\n"
    with pytest.raises(BuildError) as caught:
        build_in(tmp_path, text)
    assert "slide «Incluida»: LaTeX: Undefined control sequence" in str(caught.value)


@pytest.mark.parametrize("damage", ["cut short", "junk", "another PDF"])
def test_a_damaged_pdf_is_built_again_not_reported_as_built(tmp_path, monkeypatch, damage):
    monkeypatch.chdir(tmp_path)
    pdf = build_in(tmp_path, FIXED)
    good = pdf.read_bytes()
    damaged = {"cut short": lambda: good[:len(good) // 2], "junk": lambda: b"%PDF-1.5\nnada\n%%EOF\n",
               "another PDF": lambda: clean_build_bytes(tmp_path, FIXED.replace("bien", "antes"), "other")}[damage]()
    pdf.write_bytes(damaged)
    assert build_in(tmp_path, FIXED).read_bytes() == good


def test_an_unchanged_deck_whose_pdf_is_whole_costs_no_pass(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    build_in(tmp_path, FIXED)
    log = tmp_path / "build" / "deck.log"
    stamp = log.stat().st_mtime_ns
    build_in(tmp_path, FIXED)
    assert log.stat().st_mtime_ns == stamp


# 60k printed lines fill TeX's main memory (slide.text of a .run block, echoed: a frame with code);
# a macro that calls itself fills its input stack, here read from the .vrb.
CAPACITY = {
    # a macro that doubles itself for ever: its tokens fill TeX's main memory (what 60,000 printed
    # lines did before a .run block's output was capped at 2,000 lines)
    "main memory": ("---\ntitle: Cap\nlang: es\n---\n\n# Primera\n\nHola.\n\n# Mucha salida\n\n"
                    "Texto `\\def\\crece{x}\\loop\\edef\\crece{\\crece\\crece}\\iftrue\\repeat`{=latex}.\n", "Mucha salida"),
    "input stack": (CODE.replace("TAIL", "`\\def\\bucle{\\bucle x}\\bucle`{=latex}"), "Con código"),
}


@pytest.mark.parametrize("case", CAPACITY, ids=list(CAPACITY))
def test_a_capacity_error_names_its_slide_in_plain_words(tmp_path, monkeypatch, case):
    from filters.pipeline.build import BuildError

    monkeypatch.chdir(tmp_path)
    text, slide = CAPACITY[case]
    with pytest.raises(BuildError) as caught:
        build_in(tmp_path, text)
    first = str(caught.value).splitlines()[0]
    assert f"slide «{slide}»: LaTeX ran out of room ({case} size" in first
    assert ("print less" if case == "main memory" else "a macro that calls itself") in first
    assert formats(tmp_path, "*.failed") == []


def test_a_handouts_missing_picture_names_its_slide(tmp_path, monkeypatch):
    from filters.pipeline.build import BuildError

    monkeypatch.chdir(tmp_path)
    text = "---\ntitle: Hoja\nlang: es\n---\n\n# Primera\n\nHola.\n\n# Con foto\n\n![Una foto](img/falta.png)\n"
    with pytest.raises(BuildError) as caught:
        build_in(tmp_path, text, to="latex")
    first = str(caught.value).splitlines()[0]
    assert "slide «Con foto»" in first and "File `img/falta.png' not found" in first and "preamble" not in first


def passes_that(monkeypatch, ending):
    """Make every LaTeX pass run from a precompiled format end as ``ending(done)`` says (a
    CompletedProcess, or ``None`` to keep the real one)."""
    from filters.latex import runner

    real = runner.run_pass

    def run_pass(command, cwd, env, **kwargs):
        done = real(command, cwd, env, **kwargs)
        if any(arg.startswith("-fmt=") for arg in command):
            return ending(done) or done
        return done

    monkeypatch.setattr(runner, "run_pass", run_pass)


def test_tex_dying_on_its_format_marks_it_failed_until_the_preamble_changes(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    passes_that(monkeypatch, lambda done: subprocess.CompletedProcess(done.args, -11, "", ""))  # SIGSEGV
    pdf = build_in(tmp_path, FIXED)
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert len(formats(tmp_path, "*.failed")) == 1 and formats(tmp_path, "*.fmt") == []
    assert "could not run from its precompiled preamble (it ended by signal 11" in capfd.readouterr().err
    build_in(tmp_path, FIXED.replace("bien", "otra"))
    assert "precompiled" not in capfd.readouterr().err, "said once; the plain way from then on"
    build_in(tmp_path, FIXED.replace("title: Estado", "title: Otro"))  # a new preamble: tried again
    assert len(formats(tmp_path, "*.failed")) == 2


def test_tex_dying_on_a_deck_that_fails_anyway_marks_nothing(tmp_path, monkeypatch):
    from filters.pipeline.build import BuildError

    monkeypatch.chdir(tmp_path)
    passes_that(monkeypatch, lambda done: subprocess.CompletedProcess(done.args, -11, "", ""))
    with pytest.raises(BuildError, match="slide «Con código»"):
        build_in(tmp_path, BROKEN)
    assert formats(tmp_path, "*.failed") == [] and len(formats(tmp_path, "*.fmt")) == 1, "the plain run failed too"


def test_a_killed_pass_leaves_no_lasting_mark(tmp_path, monkeypatch):
    from filters.latex import runner
    from filters.pipeline.build import BuildError

    monkeypatch.chdir(tmp_path)
    real = runner.run_pass
    passes_that(monkeypatch, lambda done: subprocess.CompletedProcess(done.args, -9, "", ""))  # SIGKILL
    with pytest.raises(BuildError, match="stopped by signal 9"):
        build_in(tmp_path, FIXED)
    assert formats(tmp_path, "*.failed") == [] and len(formats(tmp_path, "*.fmt")) == 1
    monkeypatch.setattr(runner, "run_pass", real)
    assert build_in(tmp_path, FIXED).read_bytes() == clean_build_bytes(tmp_path, FIXED)


@pytest.mark.parametrize("failure", ["full disk", "killed"])
def test_a_dump_that_failed_for_a_passing_reason_is_tried_again(tmp_path, monkeypatch, capfd, failure):
    from filters.latex import runner

    monkeypatch.chdir(tmp_path)
    real = runner.run_pass
    ended = {"full disk": subprocess.CompletedProcess([], 1, "! Could not write 1 4-byte item(s) to x.fmt.\n", ""),
             "killed": subprocess.CompletedProcess([], -9, "", "")}[failure]

    def failing_dump(command, cwd, env, **kwargs):
        return ended if "-ini" in command else real(command, cwd, env, **kwargs)

    monkeypatch.setattr(runner, "run_pass", failing_dump)
    build_in(tmp_path, FIXED)
    assert "could not be precompiled this time" in capfd.readouterr().err
    assert formats(tmp_path, "*.failed") == [] and formats(tmp_path, "*.fmt") == []
    monkeypatch.setattr(runner, "run_pass", real)
    build_in(tmp_path, FIXED.replace("bien", "otra"))
    assert len(formats(tmp_path, "*.fmt")) == 1, "dumped on the next build"


def test_what_a_killed_build_left_half_written_is_cleaned(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "build"
    (out / "formats").mkdir(parents=True)
    dead = next(pid for pid in range(4_000_000, 4_100_000) if not Path(f"/proc/{pid}").exists())
    strays = [".deck.tex.k2j3h4g5", ".deck.passes.json.a_b1c2d3", ".deck.pdf.partial", ".deck.docx.partial",
              f"deck-preamble-{dead}.fmt", f"deck-preamble-{dead}.log", "formats/.pdflatex.where.k2j3h4g5"]
    kept = [".otro.tex.k2j3h4g5", ".deck.lock", f"deck-preamble-{os.getppid()}.log",  # another deck's; a live dump
            "formats/.abc.failed.k2j3h4g5"]  # in formats/, shared: only an hour-old one is a stray
    for name in strays + kept:
        (out / name).write_text("x")
    os.utime(out / strays[-1], (1, 1))
    build_in(tmp_path, FIXED)
    assert [n for n in strays if (out / n).exists()] == []
    assert [n for n in kept if not (out / n).exists()] == []


def test_a_package_beside_the_deck_that_changes_is_dumped_again(tmp_path, monkeypatch):
    """The format holds what the preamble loaded: a package beside the deck (or a theme) that
    changes makes a new format, and the PDF is the clean build's."""
    monkeypatch.chdir(tmp_path)
    text = ("---\ntitle: Local\nlang: es\nheader-includes: \\usepackage{mio}\n---\n\n# Primera\n\nTexto \\miotexto.\n")
    (tmp_path / "mio.sty").write_text("\\newcommand\\miotexto{UNO}\n")
    assert "Texto UNO." in subprocess.run(["pdftotext", str(build_in(tmp_path, text)), "-"], capture_output=True,
                                          text=True, check=True).stdout
    (tmp_path / "mio.sty").write_text("\\newcommand\\miotexto{DOS}\n")
    pdf = build_in(tmp_path, text)
    assert "Texto DOS." in subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "preloaded format=deck-preamble" in (tmp_path / "build" / "deck.log").read_text(), "from a new format"
    assert pdf.read_bytes() == clean_build_bytes(tmp_path, text, also=("mio.sty",))
