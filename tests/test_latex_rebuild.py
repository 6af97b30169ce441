"""Rebuilds faster than LaTeX alone: the precompiled preamble gives the same PDF as a plain run,
is made again only when the preamble changes, and falls back (saying so once) when it cannot be
made; an unchanged deck costs no LaTeX pass; ``attnslides watch`` rebuilds on save, survives an
error, and stops cleanly on SIGINT/SIGTERM without leaving a process behind."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import DECKS, needs_latex

pytestmark = [
    pytest.mark.e2e,
    needs_latex,
]

SMALL = ("---\ntitle: TITLE\nlang: es\n---\n\n# Primera\n\nUna palabra: WORD.\n\n"
         "# Posiciones\n\n```{.posenc #pe num_positions=8 d_model=8 dims=0 caption=\"Ocho posiciones.\"}\n```\n")


def text_of(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def pages_as_pixels(pdf: Path, folder: Path) -> list[bytes]:
    """Every page rendered at 30 dpi (PGM bytes): the same pages look the same."""
    folder.mkdir()
    subprocess.run(["pdftoppm", "-r", "30", "-gray", str(pdf), str(folder / "p")], check=True)
    return [p.read_bytes() for p in sorted(folder.glob("p*.pgm"))]


def build_in(tmp_path, monkeypatch, text: str | None = None, name: str = "deck.md", deck_source: Path | None = None):
    from filters.pipeline.build import build

    monkeypatch.chdir(tmp_path)
    if deck_source is not None:
        shutil.copy2(deck_source, tmp_path / name)
    elif text is not None:
        (tmp_path / name).write_text(text)
    return tmp_path / build(Path(name), Path("build"))


def test_the_precompiled_and_the_plain_run_give_the_same_pages(tmp_path, monkeypatch):
    from filters.latex import runner as texrun

    pdf = build_in(tmp_path, monkeypatch, deck_source=DECKS / "outputs.md", name="outputs.md")
    assert list((tmp_path / "build" / "formats").glob("*.fmt")), "the preamble was precompiled"
    assert "(preloaded format=outputs-preamble" in (tmp_path / "build" / "outputs.log").read_text()
    fast_text, fast_pages = text_of(pdf), pages_as_pixels(pdf, tmp_path / "fast")

    monkeypatch.setattr(texrun, "precompiled_preamble", lambda *a, **k: None)
    shutil.rmtree(tmp_path / "build")
    pdf = build_in(tmp_path, monkeypatch, name="outputs.md")
    assert "(preloaded format=pdflatex" in (tmp_path / "build" / "outputs.log").read_text()
    assert text_of(pdf) == fast_text
    assert pages_as_pixels(pdf, tmp_path / "plain") == fast_pages


def test_the_format_is_made_again_only_when_the_preamble_changes(tmp_path, monkeypatch):
    formats = tmp_path / "build" / "formats"
    build_in(tmp_path, monkeypatch, SMALL.replace("TITLE", "Uno").replace("WORD", "hola"))
    first = {p.name for p in formats.glob("*.fmt")}
    log = tmp_path / "build" / "deck.log"

    build_in(tmp_path, monkeypatch, SMALL.replace("TITLE", "Uno").replace("WORD", "adiós"))  # the body only
    assert {p.name for p in formats.glob("*.fmt")} == first
    assert "adiós" in text_of(tmp_path / "build" / "deck.pdf")

    stamp = log.stat().st_mtime_ns
    build_in(tmp_path, monkeypatch, SMALL.replace("TITLE", "Uno").replace("WORD", "adiós"))  # nothing changed
    assert log.stat().st_mtime_ns == stamp, "an unchanged deck costs no LaTeX pass"

    pdf = build_in(tmp_path, monkeypatch, SMALL.replace("TITLE", "Dos").replace("WORD", "adiós"))  # the preamble
    assert len({p.name for p in formats.glob("*.fmt")} - first) == 1
    assert "Dos" in text_of(pdf)


def test_a_changed_figure_file_reruns_latex_though_the_tex_is_the_same(tmp_path, monkeypatch):
    from filters.latex import runner as texrun

    two = SMALL + "\n# Otra\n\n```{.posenc #pe2 num_positions=12 d_model=8 dims=0 caption=\"Doce.\"}\n```\n"
    pdf = build_in(tmp_path, monkeypatch, two.replace("TITLE", "Uno").replace("WORD", "hola"))
    tex, figures = tmp_path / "build" / "deck.tex", tmp_path / "build" / "figures" / "deck"
    _, done, _ = texrun.typeset(tex, "pdflatex", deck=tmp_path / "deck.md")
    assert not done.args, "nothing changed: no pass"
    before = pdf.read_bytes()
    one, other = (figures / "pe.pdf").read_bytes(), (figures / "pe2.pdf").read_bytes()
    (figures / "pe.pdf").write_bytes(other)  # the .tex names the same files; one of them changed
    (figures / "pe2.pdf").write_bytes(one)
    _, done, _ = texrun.typeset(tex, "pdflatex", deck=tmp_path / "deck.md")
    assert done.args and done.returncode == 0, "a LaTeX pass ran"
    assert pdf.read_bytes() != before


def test_a_preamble_that_cannot_be_precompiled_is_built_plainly_and_said_once(tmp_path, monkeypatch, capfd):
    from filters.latex import runner as texrun

    real = texrun.run_pass

    def failing_dump(command, cwd, env, **kwargs):
        if "-ini" in command:
            return subprocess.CompletedProcess(command, 1, "! Undumpable thing.\n", "")
        return real(command, cwd, env, **kwargs)

    monkeypatch.setattr(texrun, "run_pass", failing_dump)
    pdf = build_in(tmp_path, monkeypatch, SMALL.replace("TITLE", "Uno").replace("WORD", "hola"))
    assert "hola" in text_of(pdf)
    assert "could not be precompiled (Undumpable thing.)" in capfd.readouterr().err
    build_in(tmp_path, monkeypatch, SMALL.replace("TITLE", "Uno").replace("WORD", "otra"))
    assert "precompiled" not in capfd.readouterr().err, "said once"


THREE = ("---\ntitle: Tres\nlang: es\n---\n\n# Uno\n\nPrimera: WORD.\n\n# Dos\n\n- una\n- lista\n\n"
         "# Tres\n\n```{.posenc #pe num_positions=8 d_model=8 dims=0 caption=\"Ocho posiciones.\"}\n```\n")


def test_a_one_word_edit_typesets_only_its_frame_and_gives_the_pages_of_a_full_run(tmp_path, monkeypatch):
    build_in(tmp_path, monkeypatch, THREE.replace("WORD", "hola"))
    pdf = build_in(tmp_path, monkeypatch, THREE.replace("WORD", "adiós"))
    partial = (tmp_path / "build" / "deck-frames.tex").read_text()
    assert "adiós" in partial and "lista" not in partial and "includegraphics" not in partial, "only its frame"
    assert "adiós" in text_of(pdf)
    quick = pages_as_pixels(pdf, tmp_path / "quick")

    shutil.rmtree(tmp_path / "build")  # the same deck from nothing: every frame, every pass
    full = build_in(tmp_path, monkeypatch)
    assert pages_as_pixels(full, tmp_path / "full") == quick


def test_a_frame_that_gains_a_page_is_built_by_the_full_passes(tmp_path, monkeypatch):
    build_in(tmp_path, monkeypatch, THREE.replace("WORD", "hola"))
    pdf = build_in(tmp_path, monkeypatch, THREE.replace("WORD", "hola\n\n. . .\n\nY luego"))  # an overlay more
    pages = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    assert "Pages:           5" in pages and "Y luego" in text_of(pdf)
    assert "\\beamer@framepages {2}{3}" in (tmp_path / "build" / "deck.nav").read_text()


NUMBERED = ("---\ntitle: Números\nlang: es\n---\n\n# Uno\n\nTexto^[nota uno].\n\n"
            "![Uno](gato.png){height=20%}\n\n# Dos\n\nMás WORD^[nota dos].\n\n![Dos](gato.png){height=20%}\n")


def test_a_frame_rebuilt_alone_keeps_its_figure_and_footnote_numbers(tmp_path, monkeypatch):
    """Found by a newcomer's review: the frame typeset alone restarted figures and footnotes at 1."""
    shutil.copy(Path(__file__).parent / "corpus" / "tema-propio" / "img" / "gato.png", tmp_path / "gato.png")
    build_in(tmp_path, monkeypatch, NUMBERED.replace("WORD", "palabras"))
    pdf = build_in(tmp_path, monkeypatch, NUMBERED.replace("WORD", "otras palabras"))
    assert (tmp_path / "build" / "deck-frames.tex").exists(), "the second frame alone"
    shown = text_of(pdf)
    assert "Figura 2: Dos" in shown and "2 nota dos" in " ".join(shown.split())
    quick = pages_as_pixels(pdf, tmp_path / "quick")
    shutil.rmtree(tmp_path / "build")
    assert pages_as_pixels(build_in(tmp_path, monkeypatch), tmp_path / "full") == quick

    pdf = build_in(tmp_path, monkeypatch, NUMBERED.replace("WORD", "otras palabras").replace("![Uno](gato.png){height=20%}", ""))
    assert "Figura 1: Dos" in text_of(pdf), "a figure less before: the full passes renumber"


def test_an_overflow_is_reported_until_it_is_fixed_whatever_frame_changes(tmp_path, monkeypatch):
    """Found by a newcomer's review: a frame rebuilt alone left the log of the last full run, so an
    overflow elsewhere (or in it) stopped being reported."""
    from filters.pipeline.build import BuildError

    long = "\n".join(f"- línea {n} de una lista demasiado larga para un solo frame" for n in range(30))
    deck = THREE.replace("- una\n- lista", long)
    with pytest.raises(BuildError, match="«Dos»"):
        build_in(tmp_path, monkeypatch, deck.replace("WORD", "hola"))
    with pytest.raises(BuildError, match="«Dos»"):
        build_in(tmp_path, monkeypatch, deck.replace("WORD", "adiós"))  # another frame changed
    with pytest.raises(BuildError, match="«Dos»"):
        build_in(tmp_path, monkeypatch, deck.replace("WORD", "adiós"))  # nothing changed
    build_in(tmp_path, monkeypatch, THREE.replace("WORD", "adiós"))  # fixed


def test_a_deck_that_is_gone_is_said_so(tmp_path, monkeypatch):
    from filters.pipeline.build import BuildError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(BuildError, match="no such deck"):
        from filters.pipeline.build import build

        build(Path("ausente.md"))


# ---- attnslides watch ----


class Watch:
    """``attnslides watch`` in a subprocess, its stderr read line by line."""

    def __init__(self, folder: Path, *args: str):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen([str(Path(sys.executable).with_name("attnslides")), "watch", *args],
                                        cwd=folder, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                        env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stderr:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.process.poll() is None, f"watch ended: {self.seen}"
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} in {timeout} s: {self.seen}")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_watch_rebuilds_on_save_survives_an_error_and_stops_cleanly(tmp_path, stop):
    psutil = pytest.importorskip("psutil")
    deck = tmp_path / "deck.md"
    deck.write_text(SMALL.replace("TITLE", "Uno").replace("WORD", "hola"))
    watch = Watch(tmp_path, "deck.md")
    watch.wait_for("watching deck.md")
    pdf = tmp_path / "build" / "deck.pdf"
    assert "hola" in text_of(pdf)

    deck.write_text(SMALL.replace("TITLE", "Uno").replace("WORD", "guardado"))
    watch.wait_for("build/deck.pdf (")
    assert "guardado" in text_of(pdf)

    deck.write_text(SMALL.replace("TITLE", "Uno").replace("WORD", "roto").replace("d_model=8", "d_model=ocho"))
    watch.wait_for("option 'd_model'")
    watch.wait_for("waiting for the next save")

    deck.write_text(SMALL.replace("TITLE", "Uno").replace("WORD", "arreglado").replace("num_positions=8", "num_positions=9"))
    watch.wait_for("build/deck.pdf (")  # a new figure, computed by the warm process's workers
    assert "arreglado" in text_of(pdf)

    for n in range(3):  # new frames: full passes, each with a LaTeX started ahead that must not pile up
        deck.write_text(SMALL.replace("TITLE", "Uno").replace("WORD", "arreglado").replace("num_positions=8", "num_positions=9")
                        + f"\n# Extra {n}\n\nMás.\n" * (n + 1))
        watch.wait_for("build/deck.pdf (")
    time.sleep(0.5)
    latex = [p for p in psutil.Process(watch.process.pid).children() if "latex" in " ".join(p.cmdline())]
    assert len(latex) <= 1, f"LaTeX processes waiting: {len(latex)}"
    family = [watch.process.pid] + [p.pid for p in psutil.Process(watch.process.pid).children(recursive=True)]
    watch.process.send_signal(stop)
    assert watch.process.wait(timeout=30) == 0
    watch.wait_for("watch stopped", timeout=5)
    time.sleep(0.5)
    alive = [pid for pid in family if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"left behind: {[psutil.Process(pid).cmdline() for pid in alive]}"
