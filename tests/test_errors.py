"""No slide breaks in silence: each case is a small deck in tests/decks/ that either builds a correct
slide or stops with a message naming the deck, the slide, the block and the key, leaving nothing
half-written behind."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import panflute as pf
import pytest
from conftest import DECKS, ROOT, figures_of, filter_deck, live, make_doc, needs_latex, needs_lualatex

from filters.errors import BlockError


def error_of(deck: str, build_dirs, monkeypatch, **metadata) -> str:
    """The message that stops the filter on ``tests/decks/<deck>``; nothing was written."""
    with pytest.raises(BlockError) as caught:
        filter_deck(DECKS / deck, build_dirs, monkeypatch, **metadata)
    assert_nothing_written(build_dirs)
    return str(caught.value)


def assert_nothing_written(build_dirs) -> None:
    assert not Path(build_dirs["figures-dir"]).exists(), "no figure written"
    cache = Path(build_dirs["cache-dir"])
    entries = [p for p in cache.iterdir() if not p.name.startswith(".")] if cache.exists() else []
    assert not entries, f"no cache entry written: {entries}"


def only(doc, cls):
    found = []
    doc.walk(lambda e, d: found.append(e) if isinstance(e, cls) else None)
    return found


# ---- every value is checked where it is read ----


def test_an_empty_body_is_an_error_not_a_default_sentence(build_dirs, monkeypatch):
    message = error_of("empty-body.md", build_dirs, monkeypatch)
    assert "empty-body.md:8" in message and "«Un bloque sin frase»" in message and ".attention" in message
    assert "option 'sentence'" in message and "no sentence" in message


def test_an_unsupported_language_lists_the_supported_ones(build_dirs, monkeypatch):
    message = error_of("lang-fr.md", build_dirs, monkeypatch)
    assert "lang-fr.md" in message and "'fr'" in message and "option 'lang'" in message
    assert re.search(r"words in (es, en|en, es) only", message)


def test_values_beyond_what_torch_takes_or_a_slide_holds_are_option_errors(build_dirs, monkeypatch):
    """Before: the seed failed in the worker ("Overflow when unpacking long long"), and the huge
    encoding took 95 s and wrote 965 MB of JSON. Both are now found while reading, at once."""
    message = error_of("huge-values.md", build_dirs, monkeypatch)
    seed, posenc = message.splitlines()[:2]
    assert "«Una semilla enorme»" in seed and "option 'seed'" in seed and "99999999999999999999" in seed
    assert "«Una codificación enorme»" in posenc and "option 'num_positions'" in posenc and "250,000" in posenc


def test_a_live_block_in_a_footnote_is_named_not_a_latex_error(build_dirs, monkeypatch):
    """Regression: a figure in a footnote reached LaTeX, which stopped with "Paragraph ended before
    \\@makefntext was complete" and no slide named."""
    message = error_of("live-in-footnote.md", build_dirs, monkeypatch)
    line = next(n for n, text in enumerate((DECKS / "live-in-footnote.md").read_text().splitlines(), start=1)
                if "#dentro" in text)
    assert f"live-in-footnote.md:{line}," in message and "«Una diapositiva con nota»" in message
    assert ".attention #dentro" in message and "cannot be in a footnote" in message and "#fuera" not in message


def test_every_error_of_a_deck_in_one_run(build_dirs, monkeypatch):
    message = error_of("many-errors.md", build_dirs, monkeypatch)
    assert "«(metadata)»" in message and "'precission'" in message and "did you mean 'precision'" in message
    for slide_, key in (("Primero", "seed"), ("Segundo", "d_model"), ("Tercero", "length")):
        assert re.search(rf"«{slide_}».*option '{key}'", message), (slide_, key)
    assert "4 problems in" in message


def test_a_character_no_font_has_stops_the_figure(build_dirs, monkeypatch):
    """Ethiopic is in none of the figure fonts: it would be drawn as empty boxes."""
    message = error_of("missing-glyph.md", build_dirs, monkeypatch)
    assert "«Un saludo etíope»" in message and "option 'sentence'" in message
    assert "«ሰ» (U+1230)" in message and "empty boxes" in message


@pytest.mark.parametrize("heads", range(2, 9))
def test_multihead_draws_every_sentence_its_limit_allows(tmp_path, heads):
    """The token limit for ``heads`` panels is one the figure can label (no TooDense), and one more
    token is an option error, found before anything is drawn."""
    from filters.blocks.options import parse_options
    from filters.figures.render import render
    from filters.kinds import KINDS
    from filters.kinds.multihead import max_tokens_for

    kind, words = KINDS["multihead"], "el gato negro se sentó en la alfombra roja de la abuela".split()
    most = max_tokens_for(heads)
    options = parse_options(kind.options, {"heads": str(heads), "d_model": str(4 * heads)}, " ".join(words[:most]))
    render(kind, kind.compute(options), options, tmp_path / "m.pdf", lang="es")
    if most < len(words):
        with pytest.raises(BlockError, match="at most"):
            parse_options(kind.options, {"heads": str(heads), "d_model": str(4 * heads)}, " ".join(words[:most + 1]))


def test_tick_labels_never_run_together(tmp_path):
    """Thirteen widths on .scaling's log axis: 1024, 2048 and 4096 ran into one another."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from filters.blocks.options import parse_options
    from filters.figures.render import render
    from filters.kinds import KINDS

    kind = KINDS["scaling"]
    options = parse_options(kind.options, {"d_k": str([2**i for i in range(13)]), "samples": "8"}, "")
    fig = render(kind, kind.compute(options), options, tmp_path / "s.png", lang="es")
    renderer = FigureCanvasAgg(fig).get_renderer()
    shown = [t.get_window_extent(renderer) for t in fig.axes[0].get_xticklabels() if t.get_visible() and t.get_text()]
    assert len(shown) >= 6
    assert not any(a.overlaps(b) for a, b in zip(shown, shown[1:], strict=False))


# ---- captions are inline text, each on its own ----


def test_captions_that_look_like_blocks_stay_captions_each_on_its_figure(build_dirs, monkeypatch):
    """Before: "2. Second step" crashed panflute (a ListItem in a Plain), and the HTML comment in one
    caption shifted every later Markdown caption onto the wrong figure."""
    doc = filter_deck(DECKS / "captions-markdown.md", build_dirs, monkeypatch)
    captions = {f.identifier: f.caption for f in only(doc, pf.Figure)}
    assert pf.stringify(captions["lista"]) == "2. Second step: the weights A"
    assert only(captions["lista"], pf.Math)[0].text == "A"
    assert pf.stringify(captions["comentario"]).strip() == "Pesos con comentario"
    assert pf.stringify(captions["cita"]).lstrip("> ") == "Pesos citados" and only(captions["cita"], pf.Strong)
    assert pf.stringify(captions["ultima"]) == "Pesos de la última" and only(captions["ultima"], pf.Emph)


# ---- overlays are relative ----


def test_worked_example_overlays_are_relative_to_what_precedes_them(build_dirs, monkeypatch):
    doc = filter_deck(DECKS / "overlays-after-list.md", build_dirs, monkeypatch)
    (raw,) = [r for r in only(doc, pf.RawBlock) if "only<+->" in r.text]
    assert raw.text.count("\\only<+->") == 4 and not re.search(r"\\(only|uncover)<\d", raw.text)
    assert "\\addtocounter{beamerpauses}{-1}" in raw.text, "a pause after the block counts from its last step"


# ---- the environment is checked first ----


def test_an_old_pandoc_is_named_before_any_figure_is_computed(build_dirs, monkeypatch):
    monkeypatch.setenv("PANDOC_VERSION", "2.17.1.1")
    message = error_of("steps-largest.md", build_dirs, monkeypatch)
    assert "pandoc 2.17.1.1" in message and "pandoc 3 or later" in message


def test_a_device_that_is_not_here_is_named_with_where_it_was_set(build_dirs, monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the device is available")
    message = error_of("steps-largest.md", build_dirs, monkeypatch, device="cuda")
    assert "'cuda'" in message and "metadata 'attnslides: {device: …}'" in message
    monkeypatch.setenv("ATTNSLIDES_DEVICE", "cuda")
    message = error_of("steps-largest.md", build_dirs, monkeypatch)
    assert "'cuda'" in message and "--device" in message


def test_make_slides_leaves_the_device_to_the_deck_unless_given():
    # as a lecturer's shell runs it: `make test` itself sets DEVICE for pytest, and make passes its
    # own variables down through MAKEFLAGS
    env = {k: v for k, v in os.environ.items() if k not in ("DEVICE", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}

    def command(*args):
        done = subprocess.run(["make", "-n", "-W", "pyproject.toml", "slides", *args], cwd=ROOT, capture_output=True,
                              text=True, check=True, env=env)
        return next(line for line in done.stdout.splitlines() if "attnslides build" in line)

    assert "--device" not in command()
    assert "--device cuda" in command("DEVICE=cuda")


# ---- decks never overwrite each other's figures ----


def test_two_untitled_decks_through_pandoc_f_keep_their_own_figures(tmp_path):
    """Before: both wrote build/figures/untitled-deck/pesos.pdf, so one PDF showed the other's heatmap."""
    from filters.pipeline.build import filter_command
    from filters.util.pandoc import pandoc_path

    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTNSLIDES_")}
    texts = {}
    for name in ("untitled-a", "untitled-b"):
        shutil.copy(DECKS / f"{name}.md", tmp_path)
        subprocess.run([pandoc_path(), f"{name}.md", "-F", filter_command(), "-t", "beamer", "-o", f"{name}.tex"],
                       cwd=tmp_path, env=env, check=True, capture_output=True)
        texts[name] = (tmp_path / f"{name}.tex").read_text()
    sentences = {"untitled-a": ["el", "gato", "come"], "untitled-b": ["la", "vaca", "muge", "pasto"]}
    pictures = {}
    for name, tex in texts.items():
        (picture,) = re.findall(r"\\includegraphics(?:\[[^]]*\])?\{([^}]+)\}", tex)
        pictures[name] = picture
        data = json.loads((tmp_path / picture).with_suffix(".json").read_text())
        assert data["tokens"] == sentences[name], f"{name} shows the figure of another deck"
    assert pictures["untitled-a"] != pictures["untitled-b"]


def test_clean_removes_the_figures_folder_of_a_deleted_deck(build_dirs, monkeypatch, tmp_path):
    from filters.cache.store import Cache

    deck = tmp_path / "borrado.md"
    shutil.copy(DECKS / "steps-largest.md", deck)
    filter_deck(deck, build_dirs, monkeypatch)
    folder = figures_of(deck, build_dirs)
    mine = folder / "notas.txt"
    assert any(folder.glob("*.json"))
    deck.unlink()
    Cache(build_dirs["cache-dir"]).clean()
    assert not folder.exists()
    folder.mkdir(parents=True)
    mine.write_text("no es de attnslides")
    Cache(build_dirs["cache-dir"]).clean()
    assert mine.exists(), "clean removes only what attnslides wrote"


# ---- the command line ----


def test_cli_names_missing_decks_and_no_decks(tmp_path, monkeypatch, capsys):
    from filters.cli.main import main as cli

    monkeypatch.chdir(tmp_path)
    assert cli(["build", "nada.md"]) == 2
    assert "no such deck: nada.md" in capsys.readouterr().err
    assert cli(["build"]) == 2
    assert "no decks to build" in capsys.readouterr().err


def test_cli_options_of_one_kind_and_version(capsys):
    from filters.cli.main import main as cli

    for name in ("posenc", ".posenc"):
        assert cli(["options", name]) == 0
        out = capsys.readouterr().out
        assert out.startswith(".posenc:") and "num_positions" in out and ".attention:" not in out
    assert cli(["options", "posnc"]) == 2
    assert "did you mean '.posenc'?" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        cli(["--version"])
    assert done.value.code == 0 and re.match(r"attnslides \d", capsys.readouterr().out)


def test_keep_going_builds_the_other_decks_and_ends_with_a_summary(tmp_path, monkeypatch, capfd):
    from filters.cli.main import main as cli

    monkeypatch.chdir(tmp_path)
    shutil.copy(DECKS / "empty-body.md", "roto.md")
    Path("sano.md").write_text("---\ntitle: Sano\nlang: es\n---\n\n# Sano\n\n"
                               "```{.posenc num_positions=8 d_model=8 dims=0}\n```\n")
    assert cli(["build", "--to", "revealjs", "--parallel", "1", "roto.md", "sano.md"]) == 1
    assert not Path("build/sano-html/index.html").exists(), "without --keep-going the first failure stops"
    assert cli(["build", "--to", "revealjs", "--keep-going", "roto.md", "sano.md"]) == 1  # side by side
    err = capfd.readouterr().err
    assert Path("build/sano-html/index.html").is_file()
    assert "roto.md:8, slide «Un bloque sin frase»" in err and "1 of 2 decks built; failed: roto.md" in err


def test_traceback_shows_what_is_behind_an_error_of_the_deck(build_dirs, monkeypatch):
    monkeypatch.setenv("ATTNSLIDES_TRACEBACK", "1")
    with pytest.raises(BlockError) as caught:
        filter_deck(DECKS / "run-raises.md", build_dirs, monkeypatch)
    assert "Traceback (most recent call last)" in str(caught.value)
    monkeypatch.setenv("ATTNSLIDES_TRACEBACK", "0")
    assert "Traceback (most recent call last)" not in str(caught.value)


def test_slide_titles_in_messages_are_plain_text(build_dirs):
    title = [pf.Str("Escala"), pf.Space(), pf.Math(r"\sqrt{d_k}", format="InlineMath"), pf.Space(), pf.Emph(pf.Str("sí"))]
    doc = make_doc(pf.Header(*title, level=1), live("posenc", colour=1), meta=build_dirs)
    with pytest.raises(BlockError) as caught:
        from filters.pandoc.filter import main

        main(doc)
    assert "«Escala √d_k sí»" in str(caught.value)


# ---- LaTeX: everything fits, any text renders, its errors name the slide ----

TEX = r"""\documentclass{beamer}
\begin{document}
\frame{\titlepage}

\begin{frame}{Auto-atenci\'{o}n \(\sqrt{d_k}\)}
Texto
\includegraphics{a.pdf}
\end{frame}

\begin{frame}
\frametitle{Segundo ሰ}
Texto ሰ
\end{frame}
\end{document}
"""
LOG = """Overfull \\vbox (12.3pt too high) detected at line 8
Overfull \\hbox (1.5pt too wide) in paragraph at lines 6--6
Overfull \\hbox (4.0pt too wide) in paragraph at lines 12--12
./deck.tex:7: Undefined control sequence.
attnslides-mark: the document begins
attnslides-mark: slide at line 10
./deck.vrb:3: Undefined control sequence.
Missing character: There is no ሰ (U+1230) in font LatinModernSans:mode=node;
"""


def test_the_log_is_mapped_to_frames_by_the_lines_of_the_tex():
    from filters.latex import log as texlog
    from filters.pipeline.pdf import plain_title

    first, second, third = texlog.frames(TEX)
    assert (first.first, first.last) == (3, 3)
    assert (second.first, second.last) == (5, 8) and plain_title(second.title) == "Auto-atención √d_k"
    assert (third.first, third.last, third.title) == (10, 13, "Segundo ሰ")
    found = texlog.overflows(LOG, TEX)
    assert [(o.box, o.points, o.frame) for o in found] == [("v", 12.3, second), ("h", 4.0, third)], "1.5 pt is tolerated"
    assert texlog.errors(LOG, TEX, "deck.tex") == [texlog.Error("Undefined control sequence.", second),
                                                 texlog.Error("Undefined control sequence.", third)], "by the last mark"
    assert texlog.missing_characters(LOG, TEX) == [("ሰ", [third])]



def build_deck(name: str, tmp_path, monkeypatch) -> Path:
    from filters.pipeline.build import build

    shutil.copy(DECKS / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path / build(Path(name), Path("build"))


def build_error(name: str, tmp_path, monkeypatch) -> str:
    """The message that stops the build of ``tests/decks/<name>``."""
    from filters.pipeline.build import BuildError

    with pytest.raises(BuildError) as caught:
        build_deck(name, tmp_path, monkeypatch)
    return str(caught.value)


def pdf_pages(pdf: Path) -> list[str]:
    """The text of each page, math letters as plain ones (𝑄 → Q), spaces collapsed."""
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return [" ".join(unicodedata.normalize("NFKC", page).split()) for page in text.split("\f")[:-1]]


@pytest.mark.e2e
@needs_latex
def test_a_frame_that_overflows_stops_the_build_naming_its_slide(tmp_path, monkeypatch):
    message = build_error("overflow-two-figures.md", tmp_path, monkeypatch)
    assert "overflow-two-figures.md, slide «Dos mapas en un marco»" in message and "too tall for the frame" in message
    assert "overflow: warn" in message


@pytest.mark.e2e
@needs_latex
def test_overflow_warn_builds_and_warns(tmp_path, monkeypatch, capfd):
    assert build_deck("overflow-warn.md", tmp_path, monkeypatch).is_file()
    assert "warning: overflow-warn.md, slide «Dos mapas en un marco»" in capfd.readouterr().err


@pytest.mark.e2e
@needs_latex
def test_a_frame_with_overlays_that_overflows_is_reported_once(tmp_path, monkeypatch, capfd):
    """Three overlays (two pauses) of one frame overflow: LaTeX logs the same overfull box for each
    page; the lecturer hears of the frame once, with how many of its overlays overflow."""
    assert build_deck("overflow-overlays.md", tmp_path, monkeypatch).is_file()
    log = (tmp_path / "build" / "overflow-overlays.log").read_text(errors="replace")
    assert log.count("Overfull \\vbox") == 3, "the reference: LaTeX's log has the box once per overlay"
    warnings = [line for line in capfd.readouterr().err.splitlines() if "warning:" in line]
    assert len(warnings) == 1, warnings
    assert "slide «Three overlays that overflow»" in warnings[0] and "on 3 overlays" in warnings[0]


def test_overflows_repeated_on_overlays_are_counted_once():
    from filters.latex import log as texlog

    log = "".join(f"Overfull \\vbox ({p}pt too high) detected at line 8\n" for p in (12.3, 15.0, 12.3))
    log += "Overfull \\hbox (4.0pt too wide) in paragraph at lines 12--12\n" * 2
    _, second, third = texlog.frames(TEX)
    found = texlog.per_frame(texlog.overflows(log, TEX))
    assert [(o.box, o.points, o.frame, n) for o, n in found] == [("v", 15.0, second, 3), ("h", 4.0, third, 2)]


@pytest.mark.e2e
@needs_latex
def test_code_size_fits_a_long_line_of_echoed_code_on_the_page(tmp_path, monkeypatch, capfd):
    """A .run block's echoed line of 68 characters: the build stops naming it; with code-size:
    scriptsize the PDF shows the whole line inside the page's margins (pdftotext's boxes)."""
    build_error("code-size.md", tmp_path, monkeypatch)
    message = capfd.readouterr().err
    assert "code-size.md, slide «Long code», block .python" in message and "line 2 of the code block" in message
    assert "code-size: scriptsize" in message
    deck = tmp_path / "code-size.md"
    deck.write_text(deck.read_text().replace("lang: en\n", "lang: en\nattnslides:\n  code-size: scriptsize\n"))
    pdf = tmp_path / build_again(deck, monkeypatch)
    boxes = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    width = float(re.findall(r'<page width="([\d.]+)"', boxes)[-1])
    words = re.findall(r'<word xMin="([\d.]+)" yMin="[\d.]+" xMax="([\d.]+)" yMax="[\d.]+">([^<]*)</word>', boxes)
    first = next(float(x0) for x0, _, text in words if text == "total")
    last = next(float(x1) for _, x1, text in words if text == "16])")
    assert last <= width - first, "the line ends inside the right margin, as wide as the left one"


def build_again(deck: Path, monkeypatch) -> Path:
    """Build ``deck`` (in its folder) as it is now."""
    from filters.pipeline.build import build

    monkeypatch.chdir(deck.parent)
    return build(Path(deck.name), Path("build"))


@pytest.mark.e2e
@needs_latex
def test_the_largest_worked_example_fits_its_frame(tmp_path, monkeypatch):
    """length=6 d_k=6 d_v=6 (the limits): before, K wrapped, A was cut and O lost. Each step fits
    (the build checks the log), and the last page shows O with its six rows."""
    pdf = build_deck("steps-largest.md", tmp_path, monkeypatch)
    data = json.loads((tmp_path / "build" / "figures" / "steps-largest").glob("*.json").__next__().read_text())
    last = pdf_pages(pdf)[-1].replace("−", "-")
    assert "O = AV" in last
    for row in data["output"]:
        assert " ".join(f"{x:.2f}" for x in row) in last, row


@pytest.mark.e2e
@needs_latex
def test_worked_example_appears_after_an_incremental_list(tmp_path, monkeypatch):
    pages = pdf_pages(build_deck("overlays-after-list.md", tmp_path, monkeypatch))
    both = next(n for n, p in enumerate(pages) if "segundo punto" in p)
    steps = [n for n, p in enumerate(pages) if "Q=" in p.replace(" ", "")]
    assert steps and min(steps) > both, f"the steps must come after the list: {pages}"
    last_step = min(n for n, p in enumerate(pages) if "O=AV" in p.replace(" ", ""))
    assert last_step == min(steps) + 3, "one page per step"
    assert len(pages) == last_step + 2 and "conclusión" in pages[-1] and "conclusión" not in pages[-2], \
        "a pause after the steps shows what follows on the very next page, with no empty overlay"


@pytest.mark.e2e
@needs_latex
@needs_lualatex
def test_chinese_and_emoji_render_in_the_figure_and_the_pdf(tmp_path, monkeypatch, capfd):
    from filters.figures import available_fallback_fonts

    if len(available_fallback_fonts()) < 2:
        pytest.skip("needs fonts-noto-cjk and fonts-symbola: run `make setup`")
    pdf = build_deck("cjk-emoji.md", tmp_path, monkeypatch)
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout.split())
    for word in ("東京", "大きい", "😀", "Tokio"):
        assert word in text, word
    assert "missing from font" not in capfd.readouterr().err
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "NotoSansCJK" in fonts and "Symbola" in fonts, "glyphs come from the fallback fonts"


@pytest.mark.e2e
@needs_latex
def test_a_latex_error_names_its_slide(tmp_path, monkeypatch):
    message = build_error("latex-error.md", tmp_path, monkeypatch)
    assert "latex-error.md, slide «El marco roto»: LaTeX: Undefined control sequence" in message


@pytest.mark.e2e
@needs_latex
def test_a_character_no_font_has_in_the_text_stops_the_build_naming_its_slide(tmp_path, monkeypatch):
    message = build_error("missing-glyph-text.md", tmp_path, monkeypatch)
    assert "missing-glyph-text.md, slide «Un saludo etíope»: «ሰ» (U+1230)" in message
    assert "missing from the PDF" in message


@pytest.mark.e2e
@needs_latex
def test_every_kind_at_its_limits_fits_a_frame_with_text_and_a_two_line_caption(tmp_path, monkeypatch):
    """Forty tokens, eight heads, 64 positions, thirteen widths …, each at the default height under a
    title, a line of text and a two-line caption: the build (which fails on any overflow) passes."""
    from filters.kinds import KINDS
    from filters.pandoc.scan import live_blocks

    deck = (DECKS / "limits.md").read_text()
    figure_kinds = {name for name, kind in KINDS.items() if kind.output == "figure"}
    assert {block.kind for block in live_blocks(deck)} >= figure_kinds | {"run"}
    pdf = build_deck("limits.md", tmp_path, monkeypatch)
    assert len(pdf_pages(pdf)) == 1 + len(live_blocks(deck))
