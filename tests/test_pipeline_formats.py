"""Every output a lecturer hands out: reveal.js offline in a real browser, a LaTeX handout, Word and
PowerPoint. The browser is Debian's Chromium driven by Playwright, with the network off."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import panflute as pf
import pytest
from conftest import DECKS, live, make_doc, slide

from filters.pandoc.filter import main
from filters.pandoc.output import REVEAL_CONTENT_PX, height_for

STEPS_BODY = "#| q: [[1, 0], [0, 1]]\n#| k: [[1, 0], [0, 1]]\n#| v: [[1, 2], [3, 4]]\n"


def only(doc, cls):
    found = []
    doc.walk(lambda e, d: found.append(e) if isinstance(e, cls) else None)
    return found


# ---- what the filter writes for each format (no pandoc, no browser) ----


def test_heights_are_given_in_each_formats_own_units():
    from filters.blocks.page import page_for

    assert height_for("66%", "beamer") == "171.9pt", "a slide's figure is placed at the length it is drawn"
    # 16:9 frames of the same theme are 17.07 pt shorter: a percentage shrinks by as much again, so
    # that title, text and caption keep the 88.6 pt that 66 % leaves them on 4:3
    assert height_for("66%", "beamer", page_for("Madrid", "169")) == f"{0.66 * 243.40833**2 / 260.48015:.1f}pt"
    assert 243.40833 - 0.66 * 243.40833**2 / 260.48015 >= 260.48015 * 0.34
    assert height_for("50%", "latex") == "130.2pt", "a handout's figure is as tall as on the slide (260.48 pt)"
    assert height_for("100%", "revealjs") == f"{REVEAL_CONTENT_PX}px"
    assert height_for("25%", "revealjs") == f"{REVEAL_CONTENT_PX // 4}px"
    assert height_for("72.27pt", "docx") == "1.00in"


@pytest.mark.parametrize(("fmt", "fragments", "overlays"), [
    ("beamer", 0, 3), ("latex", 0, 0), ("revealjs", 4, 0), ("docx", 0, 0), ("pptx", 0, 0)])
def test_worked_example_steps_appear_one_by_one_only_on_slides(build_dirs, fmt, fragments, overlays):
    doc = make_doc(*slide("Pasos", live("attention-steps", STEPS_BODY, ident="p")), meta=build_dirs, fmt=fmt)
    main(doc)
    raw = "".join(r.text for r in only(doc, pf.RawBlock))
    assert raw.count("\\only<+->") == (4 if overlays else 0)
    assert len([d for d in only(doc, pf.Div) if "fragment" in d.classes]) == fragments
    if fmt not in ("beamer", "latex"):
        assert len(only(doc, pf.Math)) == 4, "each step an equation (Word and PowerPoint make them OMML)"


@pytest.mark.parametrize(("fmt", "kept"), [("latex", False), ("docx", False), ("beamer", True), ("revealjs", True)])
def test_a_handout_drops_pauses_notes_and_repeated_titles(build_dirs, fmt, kept):
    pause = pf.Para(pf.Str("."), pf.Space(), pf.Str("."), pf.Space(), pf.Str("."))
    blocks = [*slide("Idea", pf.Para(pf.Str("texto")), pause, pf.Div(pf.Para(pf.Str("nota")), classes=["notes"])),
              *slide("Idea", live("posenc", ident="pe", num_positions=8, d_model=8, dims=0)),
              *slide("Otra", pf.Para(pf.Str("más")))]
    doc = main(make_doc(*blocks, meta=build_dirs, fmt=fmt))
    titles = [pf.stringify(h) for h in only(doc, pf.Header)]
    text = pf.stringify(doc)
    assert ("nota" in text) == kept and (". . ." in text) == kept
    assert titles == (["Idea", "Idea", "Otra"] if kept else ["Idea", "Otra"])


def test_powerpoint_takes_a_figures_caption_from_its_picture(build_dirs):
    doc = make_doc(*slide("S", live("posenc", ident="pe", num_positions=8, d_model=8, dims=0, caption="Una *leyenda*")),
                   meta=build_dirs, fmt="pptx")
    main(doc)
    (image,) = only(doc, pf.Image)
    assert pf.stringify(image) == "Una leyenda" and image.url.endswith(".png")


def test_other_formats_are_refused_at_once_with_the_list(tmp_path, monkeypatch, capsys):
    from filters.cli.main import main as cli
    from filters.pipeline.build import BuildError, build

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        cli(["build", "--to", "odt", "x.md"])
    assert done.value.code == 2
    assert "choose from 'beamer', 'latex', 'revealjs', 'docx', 'pptx'" in capsys.readouterr().err
    with pytest.raises(BuildError, match="builds beamer, latex, revealjs, docx, pptx; not 'html'"):
        build(DECKS / "outputs.md", Path("build"), to="html")
    assert not Path("build").exists()


# ---- reveal.js in a real browser, offline ----

needs_pandoc_build = pytest.mark.e2e


@pytest.fixture(scope="module")
def reveal_deck(tmp_path_factory):
    """tests/decks/outputs.md built as a reveal.js folder."""
    from filters.pipeline.build import build

    work = tmp_path_factory.mktemp("reveal")
    shutil.copy(DECKS / "outputs.md", work / "outputs.md")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        index = work / build(Path("outputs.md"), Path("build"), to="revealjs")
    return index


@needs_pandoc_build
def test_the_reveal_folder_holds_everything_it_loads(reveal_deck):
    html = reveal_deck.read_text()
    loaded = re.findall(r'(?:src|href|data-src)="([^"#]+)"', html)
    assert loaded and not [url for url in loaded if re.match(r"[a-z]+:", url)], "nothing from the network"
    for url in loaded:
        assert (reveal_deck.parent / url).is_file(), url
    assert "Madrid" not in html and "theme/white.css" in html
    assert any(url.endswith(".svg") and url.startswith("figures/") for url in loaded), "SVG figures in the folder"


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium under Playwright, or a skip that says why."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("needs Debian's chromium (`make test` installs it with apt-get)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("needs playwright (`make test` installs it)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, reveal_deck):
    """The deck open in a browser context with the network off; ``page.asked`` lists every URL
    it asked for."""
    context = browser.new_context(offline=True, viewport={"width": 1024, "height": 768})
    page = context.new_page()
    page.asked = []
    page.on("request", lambda request: page.asked.append(request.url))
    page.goto(reveal_deck.as_uri())
    page.wait_for_function("() => window.Reveal && Reveal.isReady()")
    page.evaluate("Reveal.configure({transition: 'none', backgroundTransition: 'none'})")
    yield page
    context.close()


def go_to(page, selector: str) -> None:
    """Show the slide holding ``selector``, its pictures loaded."""
    index = page.evaluate(f"[...Reveal.getSlides()].findIndex(s => s.querySelector({selector!r}))")
    assert index >= 0, selector
    page.evaluate(f"Reveal.slide({index})")
    page.wait_for_function("() => [...Reveal.getCurrentSlide().querySelectorAll('img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")


@needs_pandoc_build
def test_offline_the_heatmap_shows_and_asks_for_nothing_on_the_network(page):
    from PIL import Image

    go_to(page, "img[src*='mapa']")
    picture = Image.open(io.BytesIO(page.locator("img[src*='mapa']").screenshot())).convert("L")
    inked = sum(1 for value in picture.tobytes() if value < 200) / (picture.width * picture.height)  # mode L: a byte a pixel
    assert picture.height > 200 and inked > 0.2, f"the figure's region is blank ({inked:.0%} inked)"
    assert [url for url in page.asked if not url.startswith("file:")] == []
    assert "Notas para el profesor" in page.evaluate("Reveal.getSlideNotes()"), "speaker notes"


@needs_pandoc_build
def test_math_is_rendered_by_katex(page):
    spans = page.evaluate("[...document.querySelectorAll('span.math')].map(s => !!s.querySelector('.katex'))")
    assert len(spans) >= 5 and all(spans), "every math span rendered"
    go_to(page, "span.math.inline")
    assert "\\(" not in page.evaluate("Reveal.getCurrentSlide().innerText")


@needs_pandoc_build
def test_figure_heights_are_honoured(page):
    heights = {}
    for name in ("pequena", "grande"):
        go_to(page, f"img[src*='{name}']")
        heights[name] = page.locator(f"img[src*='{name}']").bounding_box()["height"]
    assert heights["grande"] > 3 * heights["pequena"], heights


@needs_pandoc_build
def test_stepping_through_the_worked_example_reveals_its_matrices(page):
    go_to(page, ".attention-steps")
    slide_index = page.evaluate("Reveal.getIndices().h")
    count = "Reveal.getCurrentSlide().querySelectorAll('.attention-steps .fragment.visible').length"
    shown = [page.evaluate(count)]
    while page.evaluate("Reveal.getIndices().h") == slide_index and shown[-1] < 4 and len(shown) < 12:
        page.evaluate("Reveal.next()")
        shown.append(page.evaluate(count))
    assert shown[0] == 0 and shown[-1] == 4, shown
    assert all(b - a in (0, 1) for a, b in zip(shown, shown[1:], strict=False)), f"one step at a time: {shown}"
    boxes = page.locator(".attention-steps .fragment .katex-display").all()
    assert len(boxes) == 4 and all(box.bounding_box()["height"] > 20 for box in boxes)
    page.wait_for_function("[...document.querySelectorAll('.attention-steps .fragment')]"
                           ".every(f => getComputedStyle(f).opacity === '1')")  # faded in
