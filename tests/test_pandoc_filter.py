"""The filter on documents built in Python through ``main(doc)`` — no pandoc, no LaTeX."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import panflute as pf
import pytest
from conftest import live, make_doc, slide

from filters.blocks.options import parse_options
from filters.blocks.settings import read_metadata
from filters.errors import BlockError
from filters.kinds import KINDS
from filters.kinds.attention import AttentionOptions
from filters.pandoc.filter import main

SENTENCE = "el gato se sentó en la alfombra"


def only(doc, cls):
    found = []
    doc.walk(lambda e, d: found.append(e) if isinstance(e, cls) else None)
    return found


def test_attention_block_becomes_a_figure_with_caption_and_data(build_dirs):
    doc = make_doc(*slide("Auto-atención", live("attention", SENTENCE, ident="fig-gato", caption="Pesos de atención")),
                   meta=build_dirs)
    main(doc)
    (figure,) = only(doc, pf.Figure)
    assert figure.identifier == "fig-gato"
    assert pf.stringify(figure.caption) == "Pesos de atención"
    (image,) = only(figure, pf.Image)
    assert re.search(r"/fig-gato-[0-9a-f]{8}\.pdf$", image.url) and Path(image.url).is_file()
    assert image.attributes["height"] == "177.6pt", "66% of the default theme's 269.15 pt: placed as long as drawn"
    data = json.loads(Path(image.url).with_suffix(".json").read_text())
    assert data["tokens"] == SENTENCE.split()
    for key in ("tokens", "q", "k", "v", "scale", "mask", "weights", "output"):
        assert key in data
    assert not only(doc, pf.CodeBlock), "the live block is replaced"


def test_attention_data_is_softmax_of_scaled_scores(build_dirs, figures):
    """The numbers beside the figure obey eq. (1), recomputed here with numpy from q, k, v."""
    doc = make_doc(*slide("S", live("attention", SENTENCE, ident="a", causal="true", d_model=12, d_k=4, seed=5)),
                   meta=build_dirs)
    main(doc)
    data = json.loads((figures / "a.json").read_text())
    q, k, v = (np.array(data[m]) for m in "qkv")
    assert q.shape == (7, 4) and data["scale"] == pytest.approx(1 / math.sqrt(4))
    scores = q @ k.T / math.sqrt(4)
    allowed = np.tril(np.ones((7, 7), dtype=bool))
    assert np.array_equal(np.array(data["mask"]), allowed)
    scores[~allowed] = -np.inf
    expected = np.exp(scores - scores.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(data["weights"], expected, atol=1e-6)
    np.testing.assert_allclose(data["output"], expected @ v, atol=1e-5)
    assert np.allclose(np.triu(np.array(data["weights"]), 1), 0), "causal: nothing above the diagonal"


def test_posenc_data_equals_the_formula(build_dirs, figures):
    doc = make_doc(*slide("PE", live("posenc", ident="pe", num_positions=20, d_model=7, base=100, dims="[0, 3]")),
                   meta=build_dirs)
    main(doc)
    data = json.loads((figures / "pe.json").read_text())
    pos, dim = np.arange(20)[:, None], np.arange(7)[None, :]
    angle = pos / 100.0 ** ((dim - dim % 2) / 7)
    expected = np.where(dim % 2 == 0, np.sin(angle), np.cos(angle))
    np.testing.assert_allclose(data["encoding"], expected, atol=1e-6)
    assert (data["num_positions"], data["d_model"], data["base"], data["dims"]) == (20, 7, 100.0, [0, 3])
    assert (figures / "pe.pdf").is_file()


STEPS_BODY = "#| q: [[1, 0], [0, 1], [1, 1]]\n#| k: [[1, 0], [0, 1], [1, 1]]\n#| v: [[1, 2], [3, 4], [5, 6]]\n"


def test_steps_worked_example_by_hand(build_dirs, figures):
    """Q = K = [[1,0],[0,1],[1,1]], d_k = 2. Worked by hand: row 1 of QKᵀ is [1, 0, 1], so
    S₁ = [1, 0, 1]/√2 and A₁ = [e^a, 1, e^a]/(2e^a + 1) with a = 1/√2; O₁ = A₁ V."""
    doc = make_doc(*slide("Atención producto punto", live("attention-steps", STEPS_BODY, ident="ej", precision=2)),
                   meta=build_dirs)
    main(doc)
    (raw,) = only(doc, pf.RawBlock)
    assert raw.format == "latex"
    data = json.loads((figures / "ej.json").read_text())
    a = 1 / math.sqrt(2)
    first = [math.exp(a) / (2 * math.exp(a) + 1), 1 / (2 * math.exp(a) + 1), math.exp(a) / (2 * math.exp(a) + 1)]
    assert data["scores"][0] == pytest.approx([a, 0, a])
    assert data["weights"][0] == pytest.approx(first)
    assert data["output"][0] == pytest.approx([first[0] * 1 + first[1] * 3 + first[2] * 5,
                                               first[0] * 2 + first[1] * 4 + first[2] * 6])
    # printed at the chosen precision, one step per overlay
    assert f"{first[0]:.2f}" in raw.text
    assert raw.text.count("\\only<+->") == 4, "four steps, each one overlay after what precedes it"
    assert "\\sqrt{2}" in raw.text
    # each step takes room once shown: the frame starts at its top, or it would move up at each step
    (heading,) = only(doc, pf.Header)
    assert "t" in heading.classes


def test_steps_drawn_from_seed_are_small_integers(build_dirs, figures):
    doc = make_doc(*slide("S", live("attention-steps", ident="s", seed=3, length=4, d_k=3, d_v=2)), meta=build_dirs)
    main(doc)
    data = json.loads((figures / "s.json").read_text())
    q = np.array(data["q"])
    assert q.shape == (4, 3) and np.all(q == np.round(q)) and np.abs(q).max() <= 2
    np.testing.assert_allclose(np.array(data["weights"]).sum(1), 1.0)


def test_html_output_gets_svg_and_math_fragments(build_dirs):
    doc = make_doc(*slide("S", live("attention", SENTENCE, ident="a"), live("attention-steps", STEPS_BODY)),
                   meta=build_dirs, fmt="revealjs")
    main(doc)
    (image,) = only(doc, pf.Image)
    assert image.url.endswith(".svg")
    maths = only(doc, pf.Math)
    assert len(maths) == 4 and all(m.format == "DisplayMath" for m in maths)


def test_metadata_defaults_and_attribute_override(build_dirs, figures):
    meta = {**build_dirs, "precision": 3, "attention": {"seed": 9}}
    doc = make_doc(*slide("S", live("attention-steps", STEPS_BODY, ident="x"), live("attention", SENTENCE, ident="y", seed=4)),
                   meta=meta)
    main(doc)
    (raw,) = only(doc, pf.RawBlock)
    assert "0.707" in raw.text, "precision 3 from the metadata"
    assert json.loads((figures / "y.json").read_text())["seed"] == 4


def test_caption_is_not_in_the_cache_key_but_options_are(build_dirs):
    def build(**attrs):
        doc = make_doc(*slide("S", live("posenc", ident="p", num_positions=8, d_model=8, dims="0", **attrs)), meta=build_dirs)
        main(doc)
        return {p.name for p in Path(build_dirs["cache-dir"]).iterdir()}

    first = build(caption="uno")
    assert build(caption="dos") == first
    assert len(build(caption="dos", base=50) - first) == 1


# ---- errors name the deck, the slide, the block and the key ----


def error_of(*blocks, meta):
    with pytest.raises(BlockError) as info:
        main(make_doc(*blocks, meta=meta))
    return str(info.value)


def test_unknown_key_names_slide_block_key_and_suggests(build_dirs):
    message = error_of(*slide("Auto-atención", live("attention", SENTENCE, ident="g", seeed=1)), meta=build_dirs)
    for part in ("Deck de prueba", "Auto-atención", ".attention #g", "'seeed'", "did you mean 'seed'"):
        assert part in message


def test_bad_value_names_the_key(build_dirs):
    message = error_of(*slide("PE", live("posenc", d_model="muchos")), meta=build_dirs)
    assert "'d_model'" in message and "whole number" in message and "«PE»" in message


def test_cross_option_check_names_the_key(build_dirs):
    message = error_of(*slide("PE", live("posenc", d_model=8, dims="0,9")), meta=build_dirs)
    assert "'dims'" in message and "d_model = 8" in message


def test_steps_need_matching_shapes(build_dirs):
    body = "q: [[1, 0]]\nk: [[1, 0, 0]]\nv: [[1]]\n"
    assert "'k'" in error_of(*slide("S", live("attention-steps", body)), meta=build_dirs)


def test_unknown_metadata_key_suggests(build_dirs):
    message = error_of(*slide("S", live("posenc")), meta={**build_dirs, "figure-dir": "x"})
    assert "'figure-dir'" in message and "figures_dir" in message


def test_key_both_in_attributes_and_body(build_dirs):
    message = error_of(*slide("S", live("attention", "seed: 2", seed=1)), meta=build_dirs)
    assert "'seed'" in message and "both" in message


def test_a_bad_block_stops_the_build_before_anything_is_drawn(build_dirs):
    error_of(*slide("A", live("posenc", ident="ok")), *slide("B", live("posenc", ident="bad", colour="red")), meta=build_dirs)
    assert not Path(build_dirs["figures-dir"]).exists()
    assert not Path(build_dirs["cache-dir"]).exists()


def parse_attention(attributes, body):
    return parse_options(AttentionOptions, attributes, body)


def test_parse_options_reads_quarto_lines_and_plain_body():
    spec = parse_attention({"d-model": "8"}, "#| seed: 4\n#| causal: true\nhola mundo\n")
    assert (spec.d_model, spec.seed, spec.causal) == (8, 4, True)
    assert parse_attention({}, "hola mundo").sentence == "hola mundo"
    with pytest.raises(BlockError, match="no sentence") as error:
        parse_attention({}, "")
    assert error.value.key == "sentence"


def test_read_metadata_splits_settings_and_defaults():
    settings, defaults = read_metadata({"device": "auto", "precision": 1, "posenc": {"base": 100}}, KINDS)
    assert settings.device == "auto"
    assert defaults["attention"]["precision"] == 1 and defaults["posenc"] == {"base": 100}
    assert "precision" not in defaults["posenc"], ".posenc has no precision"


def test_slide_titles_follow_pandoc_slide_level(build_dirs):
    """With level-2 frames, a level-1 header is a section, and the block belongs to the frame."""
    blocks = [pf.Header(pf.Str("Sección"), level=1), pf.Header(pf.Str("Marco"), level=2), pf.Para(pf.Str("x")),
              live("posenc", colour=1)]
    assert "«Marco»" in error_of(*blocks, meta=build_dirs)


# ---- regressions found by a newcomer's review ----


def test_quarto_lines_beside_a_plain_sentence_are_options():
    spec = parse_attention({}, "#| seed: 3\n#| causal: true\nel gato come")
    assert (spec.sentence, spec.seed, spec.causal) == ("el gato come", 3, True)


def test_metadata_that_is_not_a_mapping_is_a_clean_error(build_dirs):
    with pytest.raises(BlockError, match="'attnslides:' must hold"):
        main(make_doc(*slide("S", live("posenc")), meta=5))


def test_two_kinds_on_one_block_names_the_slide():
    block = pf.CodeBlock("", classes=["attention", "posenc"])
    assert "«Marco»" in error_of(*slide("Marco", block), meta={})


def test_unreadable_attributes_are_an_error_not_code_on_the_slide(build_dirs):
    para = pf.Para(pf.Code("{.attention #a seed = 3} el gato"))
    message = error_of(*slide("Marco", para), meta=build_dirs)
    assert "could not read" in message and "«Marco»" in message


def test_duplicate_ids_are_an_error(build_dirs):
    message = error_of(*slide("A", live("posenc", ident="x")), *slide("B", live("posenc", ident="x")), meta=build_dirs)
    assert "#x is already used" in message and "«B»" in message


def test_height_above_the_frame_is_refused(build_dirs):
    assert "'height'" in error_of(*slide("S", live("posenc", height="500%")), meta=build_dirs)


def test_a_block_without_caption_gets_one_in_the_decks_language(build_dirs):
    doc = make_doc(*slide("S", live("posenc", ident="p", num_positions=8, d_model=8, dims="0")), meta=build_dirs)
    main(doc)
    (figure,) = only(doc, pf.Figure)
    assert pf.stringify(figure.caption).startswith("Codificación posicional sinusoidal")


def test_figures_are_readable_by_everyone_and_paths_follow_the_output(build_dirs, figures, monkeypatch):
    monkeypatch.setenv("ATTNSLIDES_OUTPUT_DIR", build_dirs["figures-dir"])
    doc = make_doc(*slide("S", live("posenc", ident="p", num_positions=8, d_model=8, dims="0")), meta=build_dirs)
    main(doc)
    (image,) = only(doc, pf.Image)
    assert re.fullmatch(r"deck-de-prueba/p-[0-9a-f]{8}\.pdf", image.url), "relative to the output document's folder"
    for path in figures.iterdir():
        assert path.stat().st_mode & 0o044 == 0o044, f"{path.name} is not readable by others"


def test_a_misspelt_kind_is_an_error_not_a_code_block(build_dirs):
    message = error_of(*slide("Marco", live("atention", SENTENCE)), meta=build_dirs)
    assert "'.atention'" in message and "did you mean '.attention'" in message and "«Marco»" in message


def test_scaling_errors_name_the_key_the_lecturer_wrote(build_dirs):
    assert "'d_k'" in error_of(*slide("S", live("scaling", d_k="[1, 1000000]")), meta=build_dirs)
    message = error_of(*slide("S", live("scaling", d_k="[-1, 4]")), meta=build_dirs)
    assert "'d_k'" in message and "in [1, 65536]" in message and "None" not in message
    assert "None" not in error_of(*slide("S", live("posenc", dims="[-1]")), meta=build_dirs)
