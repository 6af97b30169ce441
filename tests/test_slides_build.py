"""End to end: the real deck through pandoc (pypandoc-binary) and LaTeX, checked in the PDF's text."""

from __future__ import annotations

import io
import json
import re
import subprocess
import unicodedata
from pathlib import Path

import pytest
from conftest import LECTURES, ROOT, figure_glyphs, frames, needs_latex, skip_without_model

from filters.pipeline.build import build

DECK = ROOT / "slides" / "transformers-1.md"
SEED = ROOT.parent / "shared" / "seed" / "transformers-1.md"

pytestmark = [
    pytest.mark.e2e,
    needs_latex,
]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Build the deck once, in a fresh folder (figures and cache under its build/)."""
    work, pdf = build_in_fresh_folder(tmp_path_factory, DECK, "deck")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return work, pdf, text


def build_in_fresh_folder(tmp_path_factory, deck: Path, name: str) -> tuple[Path, Path]:
    """Build ``deck`` from a fresh folder (figures and cache under its build/): (folder, PDF)."""
    skip_without_model()
    work = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        pdf = build(deck, Path("build"))
    return work, work / pdf


def frame_titles(markdown: str) -> list[str]:
    return [title for title, _ in frames(markdown)]


@pytest.mark.skipif(not SEED.exists(), reason="the seed deck is not beside this checkout")
def test_deck_keeps_every_line_of_the_seed():
    deck = DECK.read_text().splitlines()
    missing = [line for line in SEED.read_text().splitlines() if line.strip() and line not in deck]
    assert not missing


def test_pdf_has_every_frame(built):
    _, pdf, text = built
    flat = " ".join(text.split())
    for title in frame_titles(DECK.read_text()):
        assert title in flat, title
    assert "Transformers I: Secuencias y Atención" in flat
    pages = int(re.search(r"Pages:\s+(\d+)", subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout)[1])
    assert pages >= 15


def test_no_frame_of_the_deck_overflows_and_no_glyph_is_missing(built):
    """LaTeX's own log, read back: no overfull box above 2 pt in any frame, no missing character
    (the build fails on either; this reads the log independently of that check)."""
    from filters.latex import log as texlog

    work, pdf, _ = built
    log, tex = pdf.with_suffix(".log").read_text(errors="replace"), pdf.with_suffix(".tex").read_text()
    assert log.startswith("This is pdfTeX"), "a deck in Spanish needs no LuaLaTeX (the fastest engine)"
    assert len(texlog.frames(tex)) >= 15
    assert texlog.overflows(log, tex) == []
    assert texlog.missing_characters(log, tex) == []
    assert not re.search(r"Overfull \\vbox \((?:[3-9]|\d\d+)\.", log), "independent of texlog's regular expression"


def test_every_figure_has_its_data(built):
    work, _, _ = built
    figures = work / "build" / "figures" / "transformers-1"
    expected = {
        "fig-auto-atencion": ("tokens", "q", "k", "v", "scale", "mask", "weights", "output"),
        "fig-posenc": ("num_positions", "d_model", "base", "encoding"),
        "ej-producto-punto": ("q", "k", "v", "scale", "scores", "weights", "output"),
    }
    for name, keys in expected.items():
        data = json.loads((figures / f"{name}.json").read_text())
        assert set(keys) <= set(data), name
    assert (figures / "fig-auto-atencion.pdf").is_file() and (figures / "fig-posenc.pdf").is_file()


def test_worked_example_numbers_are_in_the_pdf(built):
    work, _, text = built
    data = json.loads((work / "build" / "figures" / "transformers-1" / "ej-producto-punto.json").read_text())
    for matrix in ("scores", "weights", "output"):
        for row in data[matrix]:
            assert re.search(r"\s+".join(f"{x:.2f}" for x in row), text), (matrix, row)


def test_heatmap_numbers_are_in_the_pdf(built):
    work, _, text = built
    data = json.loads((work / "build" / "figures" / "transformers-1" / "fig-auto-atencion.json").read_text())
    for token, row in zip(data["tokens"], data["weights"], strict=True):
        assert re.search(re.escape(token) + r"\s+" + r"\s+".join(f"{x:.2f}" for x in row), text), token


def test_bad_option_stops_the_build_and_names_slide_and_key(tmp_path, monkeypatch, capfd):
    deck = tmp_path / "malo.md"
    deck.write_text("---\ntitle: Malo\nlang: es\n---\n\n# Auto-atención\n\n```{.attention d_modle=8}\n```\n")
    monkeypatch.chdir(tmp_path)
    from filters.pipeline.build import BuildError

    with pytest.raises(BuildError):
        build(deck, Path("build"))
    err = capfd.readouterr().err
    assert "malo.md" in err and "«Auto-atención»" in err and "'d_modle'" in err and "did you mean 'd_model'" in err
    assert not (tmp_path / "build" / "malo.tex").exists() and not (tmp_path / "build" / "malo.pdf").exists()


@pytest.mark.parametrize("deck", LECTURES, ids=lambda p: p.name)
def test_the_pandoc_free_scanner_finds_the_blocks_pandoc_finds(deck):
    """make gpu-check and the messages' line numbers read the deck without pandoc; the scanner must
    see the same blocks and options, and each block's line must be its fence's."""
    import panflute as pf

    from filters.pandoc.document import find_blocks
    from filters.pandoc.scan import live_blocks
    from filters.util.pandoc import pandoc_path

    text = deck.read_text()
    doc = pf.convert_text(text, standalone=True, pandoc_path=pandoc_path())
    by_pandoc = [(kind, elem.identifier, dict(elem.attributes), elem.text) for elem, kind, _ in find_blocks(doc)]
    scanned = live_blocks(text)
    assert [block[:4] for block in scanned] == by_pandoc and len(by_pandoc) >= 6
    lines = text.splitlines()
    assert all(lines[block.line - 1].startswith("```{.") for block in scanned)


def pdf_text(pdf: Path) -> str:
    return " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout.split())


SECOND = ROOT / "slides" / "transformers-2.md"


@pytest.fixture(scope="module")
def second(tmp_path_factory):
    """The second lecture built once: its folder and its PDF's text."""
    work, pdf = build_in_fresh_folder(tmp_path_factory, SECOND, "second")
    return work, pdf_text(pdf)


def test_the_second_lecture_builds_with_every_new_kind_and_two_run_blocks(second):
    from filters.pandoc.scan import live_blocks

    kinds = [block.kind for block in live_blocks(SECOND.read_text())]
    assert {"multihead", "block", "posenc-compare", "attention-steps", "trained-attention", "model-view",
            "head-view"} <= set(kinds)
    assert kinds.count("run") >= 2
    _, text = second
    for title in frame_titles(SECOND.read_text()):
        assert title.split("$")[0].strip() in text, title
    assert "-∞" in text or "−∞" in text, "the causal worked example shows masked scores"


def test_the_heads_the_second_lecture_names_are_the_ones_the_weights_single_out(second):
    """Each head a slide names (its figure's title: layer, head, measure) is the best of the 72 by
    its rule, recomputed here in numpy from the model's own attention weights; the model view
    draws the model's weights."""
    import numpy as np

    import engine.pretrained

    work, text = second
    figures = work / "build" / "figures" / "transformers-2"
    model = engine.pretrained.load()

    def weights(sentence):  # (6, 12, L, L)
        out = model(sentence)
        return out.tokens[0], np.stack([a[0].double().numpy() for a in out.attentions])

    def best(scores):
        layer, head = np.unravel_index(np.argmax(scores), scores.shape)
        return int(layer), int(head), float(scores[layer, head])

    def rules(tokens, A):
        L = len(tokens)
        return {
            "previous-token": best(np.mean([A[..., i, i - 1] for i in range(1, L)], axis=0)),
            "cls-sink": best(A[..., :, 0].mean(-1)),
            "it->animal": best(A[..., tokens.index("it"), tokens.index("animal")]) if "animal" in tokens else None,
        }

    for name, rule, words in [("fig-cabeza-anterior", "previous-token", "peso medio en el token anterior"),
                              ("fig-cabeza-cls", "cls-sink", "peso medio en [CLS]"),
                              ("fig-cabeza-it", "it->animal", "peso de «it» en «animal»")]:
        data = json.loads((figures / f"{name}.json").read_text())
        tokens, A = weights(data["sentence"])
        layer, head, measure = rules(tokens, A)[rule]
        assert (data["rule"], data["layer"], data["heads"]) == (rule, layer, [head]), name
        assert data["measure"] == pytest.approx(measure, abs=1e-6), name
        assert f"capa {layer}, cabeza {head} {words}: {measure:.2f}" in text, name
    assert data["query"] == "it" and data["tokens"][data["queries"][0]] == "it"

    view = json.loads((figures / "fig-modelo-real.json").read_text())
    tokens, A = weights(view["sentence"])
    assert view["tokens"] == tokens and (view["layers"], view["heads"]) == (list(range(6)), list(range(12)))
    np.testing.assert_allclose(np.asarray(view["weights"]), A, atol=1e-6)


@pytest.mark.parametrize("lang", ["en", "es"])
def test_the_starter_deck_builds_in_each_language(tmp_path, monkeypatch, lang):
    """`attnslides new` writes a deck that uses every kind once, and it builds as written."""
    from filters.cli.main import main as cli
    from filters.kinds import KINDS

    monkeypatch.chdir(tmp_path)
    assert cli(["new", "deck.md", "--lang", lang]) == 0
    assert cli(["new", "deck.md", "--lang", lang]) == 1, "never overwrites"
    text = pdf_text(tmp_path / build(Path("deck.md"), Path("build")))
    words = {"en": ("Self-attention weights of", "query", "attention weight"),
             "es": ("Pesos de auto-atención de", "consulta", "peso de atención")}[lang]
    for word in words:
        assert word in text, word
    runnable = [kind for kind in KINDS.values() if not kind.unavailable()]  # the model may be missing
    assert len(list((tmp_path / "build" / "figures" / "deck").glob("*.json"))) == len(runnable)


# ---- the same deck as a handout, a Word file and a PowerPoint file ----


@pytest.fixture(scope="module")
def handed_out(built):
    """The deck built as a handout, docx and pptx beside the PDF (its cache warm)."""
    work, pdf, _ = built
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        outputs = {to: work / build(DECK, Path("build"), to=to) for to in ("latex", "docx", "pptx")}
    return pdf, outputs


def captions_of(tex: str) -> list[str]:
    """The figure captions of the Beamer ``.tex``, as words (LaTeX markup dropped)."""
    found = re.findall(r"\\caption\{(.*?)\}\\label", tex, flags=re.S)
    return [" ".join(re.sub(r"\\\(.*?\\\)|\\[a-zA-Z]+|[{}$]", " ", c).split()[:4]) for c in found]


def test_the_handout_shows_every_step_at_once_and_every_figure(handed_out):
    pdf, outputs = handed_out
    handout = outputs["latex"]
    tex, beamer = handout.with_suffix(".tex").read_text(), pdf.with_suffix(".tex").read_text()
    assert "\\uncover" not in tex and "\\begin{frame}" not in tex and "\\documentclass[" in tex
    assert tex.count("\\includegraphics") == beamer.count("\\includegraphics") >= 12
    text = subprocess.run(["pdftotext", str(handout), "-"], capture_output=True, text=True, check=True).stdout
    pages = [unicodedata.normalize("NFKC", " ".join(p.split())) for p in text.split("\f")]
    steps = next(p for p in pages if "softmax(S)" in p.replace(" ", ""))
    assert all(s in steps.replace(" ", "") for s in ("Q=", "S=", "A=softmax(S)", "O=AV")), "all four steps on one page"
    assert len(pages) < int(re.search(r"Pages:\s+(\d+)", subprocess.run(["pdfinfo", str(pdf)], capture_output=True,
                                                                         text=True).stdout)[1])


def test_word_has_every_figure_with_its_caption_and_the_steps_as_equations(handed_out):
    import zipfile

    import docx
    from PIL import Image

    pdf, outputs = handed_out
    beamer = pdf.with_suffix(".tex").read_text()
    document = docx.Document(outputs["docx"])
    assert len(document.inline_shapes) == beamer.count("\\includegraphics")
    text = " ".join(" ".join(p.text for p in document.paragraphs).split())
    for caption in captions_of(beamer):
        assert caption.split()[0] in text, caption
    with zipfile.ZipFile(outputs["docx"]) as packed:
        assert packed.read("word/document.xml").count(b"<m:oMath>") >= 4, "the worked example's steps"
        media = [n for n in packed.namelist() if n.startswith("word/media/")]
        dpi = Image.open(io.BytesIO(packed.read(media[0]))).info["dpi"][0]
    assert round(dpi) == 200, "PNG at a print resolution"


def test_powerpoint_has_every_figure_with_its_caption(handed_out):
    import pptx

    pdf, outputs = handed_out
    beamer = pdf.with_suffix(".tex").read_text()
    deck = pptx.Presentation(outputs["pptx"])
    pictures = [shape for s in deck.slides for shape in s.shapes if shape.shape_type == 13]
    assert len(pictures) == beamer.count("\\includegraphics")
    text = " ".join(shape.text_frame.text for s in deck.slides for shape in s.shapes if shape.has_text_frame)
    for caption in captions_of(beamer):
        assert caption.split()[0] in text, caption


@pytest.mark.parametrize("which", ["first", "second"])
def test_no_figure_text_of_the_lectures_is_under_7_pt(which, request):
    """Every glyph of every figure of both lectures, as built (4:3), measured in the PDF: at least
    7 pt on the page (tests/test_figure_text_size.py: the 16:9 builds and every kind at its limits)."""
    from test_figure_text_size import too_small

    work = request.getfixturevalue("built" if which == "first" else "second")[0]
    pdf = work / "build" / (DECK if which == "first" else SECOND).with_suffix(".pdf").name
    assert len({page for page, _, _ in figure_glyphs(pdf)}) >= 10
    assert too_small(pdf) == {}
