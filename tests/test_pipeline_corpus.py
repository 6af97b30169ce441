"""Real decks build as pandoc builds them, plus their live blocks (tests/corpus/).

Each deck of the corpus uses what courses use: a local theme file and pictures in a subfolder,
``header-includes``, columns, notes, incremental lists, ``{.fragile}`` and ``{.allowframebreaks}``
frames, a list- or map-valued title, a pandoc defaults file (``-d``) with ``-H``, citations and
sections, Portuguese text, a file name with a space, a ``fontspec`` deck. For each:

* plain ``pandoc`` and ``pandoc -F attnslides-filter`` write the same ``.tex`` (the filter is
  transparent, and writes nothing, for a deck without live blocks);
* ``attnslides build deck -- <the author's pandoc options>`` gives a PDF with the pages and the
  text of ``pandoc`` + ``latexmk`` run by hand in the deck's folder;
* with one live block added, the deck still builds, and nothing overflows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs_latex, needs_lualatex

pytestmark = [
    pytest.mark.e2e,
    needs_latex,
    needs_lualatex,
]

CORPUS = Path(__file__).resolve().parent / "corpus"
BIN = Path(sys.executable).parent
# deck folder, deck file, the author's pandoc options, the LaTeX engine the author runs
DECKS = [
    ("tema-propio", "clase.md", [], "pdflatex"),
    ("con-opciones", "Aula 2.md", ["-d", "defaults.yml"], "pdflatex"),
    ("fontspec", "fontes.md", [], "lualatex"),
]
LIVE = ("\n# Una figura en vivo\n\n```{.posenc #pe num_positions=8 d_model=8 dims=0 "
        "caption=\"Ocho posiciones.\"}\n```\n")


def pandoc() -> str:
    import pypandoc

    return pypandoc.get_pandoc_path()


def text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[1] for line in info.splitlines() if line.startswith("Pages:")))


@pytest.fixture
def course(tmp_path):
    """A copy of the corpus, as a course's repository."""
    shutil.copytree(CORPUS, tmp_path / "curso")
    return tmp_path / "curso"


def _env() -> dict:
    return dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.parametrize(("folder", "deck", "options", "engine"), DECKS, ids=[d[0] for d in DECKS])
def test_the_filter_is_transparent_and_writes_nothing_for_a_deck_without_live_blocks(course, folder, deck, options,
                                                                                    engine):
    here = course / folder
    before = sorted(p.name for p in here.rglob("*"))
    for name, extra in (("plain.tex", []), ("filtered.tex", ["-F", "attnslides-filter"])):
        subprocess.run([pandoc(), deck, "-s", "-t", "beamer", *options, *extra, "-o", name], cwd=here, check=True,
                       env=_env())
    assert (here / "plain.tex").read_text() == (here / "filtered.tex").read_text()
    assert sorted(p.name for p in here.rglob("*")) == sorted([*before, "plain.tex", "filtered.tex"])


@pytest.mark.parametrize(("folder", "deck", "options", "engine"), DECKS, ids=[d[0] for d in DECKS])
def test_attnslides_build_gives_the_pages_and_text_of_pandoc_and_latexmk(course, folder, deck, options, engine):
    here = course / folder
    subprocess.run([pandoc(), deck, "-s", "-t", "beamer", *options, "-o", "hand.tex"], cwd=here, check=True)
    flag = {"pdflatex": "-pdf", "lualatex": "-lualatex"}[engine]
    subprocess.run(["latexmk", flag, "-interaction=nonstopmode", "hand.tex"], cwd=here, check=True,
                   capture_output=True)
    done = subprocess.run([str(BIN / "attnslides"), "build", deck, "--", *options], cwd=here, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    built = here / "build" / (Path(deck).stem.replace(" ", "-") + ".pdf")
    assert pages(built) == pages(here / "hand.pdf")
    assert text(built) == text(here / "hand.pdf")


@pytest.mark.parametrize(("folder", "deck", "options", "engine"), DECKS, ids=[d[0] for d in DECKS])
def test_with_a_live_block_added_the_deck_builds_and_fits(course, folder, deck, options, engine):
    here = course / folder
    source = (here / deck).read_text()
    if "lang: pt" in source:  # figures speak es and en: the deck says which
        source = source.replace("lang: pt", "lang: pt\nattnslides:\n  lang: es")
    (here / deck).write_text(source + LIVE)
    done = subprocess.run([str(BIN / "attnslides"), "build", deck, "--", *options], cwd=here, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    built = here / "build" / (Path(deck).stem.replace(" ", "-") + ".pdf")
    assert "Ocho posiciones." in text(built)
    assert "overflow" not in done.stderr and "too tall" not in done.stderr


def test_pictures_named_with_dots_up_from_the_deck_are_found(course):
    """A course keeps its pictures beside its decks' folder (``../figuras/a.png``): LaTeX, in
    paranoid mode, opens no ``..`` path; the build names them from the project instead."""
    shutil.copytree(course / "tema-propio" / "img", course / "figuras")
    deck = course / "tema-propio" / "arriba.md"
    deck.write_text("---\ntitle: Arriba\nlang: es\n---\n\n# Un dibujo de otra carpeta\n\n"
                    "![Un gato.](../figuras/gato.png){height=30%}\n")
    done = subprocess.run([str(BIN / "attnslides"), "build", "tema-propio/arriba.md"], cwd=course,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "figuras/gato.png" in (course / "build" / "arriba.tex").read_text()


@pytest.mark.parametrize("title", ["title:\n  - Uno\n  - Dos", "title:\n  texto: Un mapa", "title: [a, {b: c}]"])
def test_any_metadata_shape_is_read_under_pandoc_filter(tmp_path, title):
    deck = tmp_path / "raro.md"
    deck.write_text(f"---\n{title}\nlang: es\n---\n\n# Hola\n\n```{{.posenc num_positions=8 d_model=8 dims=0}}\n```\n")
    done = subprocess.run([pandoc(), "raro.md", "-s", "-t", "beamer", "-F", "attnslides-filter", "-o", "raro.tex"],
                          cwd=tmp_path, capture_output=True, text=True, env=_env())
    assert done.returncode == 0, done.stderr
    assert "includegraphics" in (tmp_path / "raro.tex").read_text()


def test_pandoc_options_that_would_move_the_output_are_refused(course):
    here = course / "tema-propio"
    done = subprocess.run([str(BIN / "attnslides"), "build", "clase.md", "--", "-o", "otro.pdf"], cwd=here,
                          capture_output=True, text=True)
    assert done.returncode == 1 and "use its --out option" in done.stderr
    assert not (here / "otro.pdf").exists()


def test_a_deck_can_name_its_pandoc_defaults_file(course):
    here = course / "con-opciones"
    source = (here / "Aula 2.md").read_text()
    (here / "Aula 2.md").write_text(source.replace("lang: pt", "lang: pt\nattnslides:\n  pandoc-defaults: defaults.yml"))
    done = subprocess.run([str(BIN / "attnslides"), "build", "Aula 2.md"], cwd=here, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    shown = text(here / "build" / "Aula-2.pdf")
    assert "Vaswani" in shown and "Aprendizado Profundo" in shown, "citations and the -H of the defaults file"


def test_a_theme_latex_cannot_run_from_a_precompiled_preamble_builds_plainly(tmp_path):
    """Found by a newcomer: pdfTeX segfaults on the Warsaw theme's shadings dumped into a format."""
    (tmp_path / "d.md").write_text("---\ntitle: W\nlang: es\n---\n\n# Hola\n\nTexto.\n")
    for word in ("uno", "dos"):
        (tmp_path / "d.md").write_text(f"---\ntitle: W\nlang: es\n---\n\n# Hola\n\nTexto {word}.\n")
        done = subprocess.run([str(BIN / "attnslides"), "build", "d.md", "--", "-V", "theme=Warsaw"], cwd=tmp_path,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert f"Texto {word}." in text(tmp_path / "build" / "d.pdf")
    assert not list((tmp_path / "build" / "formats").glob("*.fmt")), "that format is not kept"


def test_a_defaults_file_names_its_own_folder_with_dot(course):
    """${.} in a defaults file is the file's folder (pandoc's rule), not the build folder."""
    here = course / "con-opciones"
    defaults = (here / "defaults.yml").read_text().replace("bibliography: referencias.bib",
                                                          "bibliography: ${.}/referencias.bib")
    (here / "defaults.yml").write_text(defaults.replace("- cabecalho.tex", "- ${.}/cabecalho.tex"))
    done = subprocess.run([str(BIN / "attnslides"), "build", "con-opciones/Aula 2.md", "--", "-d",
                           "con-opciones/defaults.yml"], cwd=course, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Vaswani" in text(course / "build" / "Aula-2.pdf")


def test_pictures_beside_the_decks_folder_are_found_inside_a_git_repository(course):
    """A course's decks/ and figuras/ side by side, built from inside decks/: the git repository is
    the project."""
    subprocess.run(["git", "init", "-q"], cwd=course, check=True)
    shutil.copytree(course / "tema-propio" / "img", course / "figuras")
    (course / "decks").mkdir()
    (course / "decks" / "base.md").write_text("---\ntitle: Base\nlang: es\n---\n\n# Figura del curso\n\n"
                                              "![Curva.](../figuras/gato.png){height=30%}\n")
    done = subprocess.run([str(BIN / "attnslides"), "build", "base.md"], cwd=course / "decks",
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
