"""Trustworthy under bad input: writes stay in the project, limits come before work, every bad
value is an option error naming slide, block and key (never a traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import live, make_doc, slide

from filters.errors import BlockError
from filters.pandoc.filter import main


def error_of(*blocks, meta) -> BlockError:
    with pytest.raises(BlockError) as caught:
        main(make_doc(*blocks, meta=meta))
    return caught.value


# ---- writes stay in the project ----


@pytest.mark.parametrize("ident", ["../../../slides/fig", "/etc/fig", ".hidden", "a" * 300, "a/b"])
def test_an_id_is_a_name_not_a_path(build_dirs, tmp_path, ident):
    error = error_of(*slide("S", live("posenc", ident=ident, num_positions=8, d_model=8, dims=0)), meta=build_dirs)
    assert error.key == "id" and "«S»" in str(error)
    assert not Path("build/figures").exists() and not (tmp_path.parent / "slides").exists()


@pytest.mark.parametrize(("key", "value"), [("figures-dir", "/etc"), ("cache-dir", "../../tmp/x"), ("cache-dir", ""),
                                            ("figures-dir", "~/x")])
def test_metadata_cannot_point_outside_the_project(build_dirs, key, value):
    error = error_of(*slide("S", live("posenc", num_positions=8, d_model=8, dims=0)), meta={**build_dirs, key: value})
    assert "(metadata)" in str(error) and key.replace("-", "_") in str(error)
    assert not Path("build/figures").exists()


# ---- limits before work ----


@pytest.mark.parametrize(("attributes", "body", "key"), [
    ({}, "#| caption: &a [x, x]\n#| alt: [*a, *a, *a, *a]\nel gato", None),  # a YAML alias ("billion laughs")
    ({}, "#| seed: " + "9" * 5000 + "\nel gato", None),  # beyond Python's int parsing
    ({"seed": "9" * 5000}, "el gato", "seed"),
    ({}, "el " + "gato," * 40, "sentence"),  # 80 tokens written as one line of commas
    ({}, "el " + "x" * 100, "sentence"),  # one 100-letter token
    ({"caption": "x" * 30_000}, "el gato", "caption"),
    ({"height": "0cm"}, "el gato", "height"),
    ({"d-model": "8", "d_model": "32"}, "el gato", "d_model"),
])
def test_oversized_or_ambiguous_values_are_option_errors(build_dirs, attributes, body, key):
    start = time.perf_counter()
    error = error_of(*slide("S", live("attention", body, **attributes)), meta=build_dirs)
    assert time.perf_counter() - start < 5, "refused before any work"
    assert "«S»" in str(error) and ".attention" in str(error) and (key is None or error.key == key)


def test_deeply_nested_yaml_is_an_option_error(build_dirs):
    error = error_of(*slide("S", live("attention-steps", "q: " + "[" * 3000 + "]" * 3000)), meta=build_dirs)
    assert "nested too deep" in str(error)


@pytest.mark.parametrize("q", ["[[1e300, 1e300]]", "[[true, false]]", "[[1, .nan]]", "[[1, '2']]"])
def test_a_worked_example_takes_only_moderate_finite_numbers(build_dirs, q):
    error = error_of(*slide("S", live("attention-steps", f"#| q: {q}\n#| k: {q}\n#| v: [[1, 2]]")), meta=build_dirs)
    assert error.key == "q"


def test_training_beyond_a_builds_budget_is_refused_before_it_starts(build_dirs):
    start = time.perf_counter()
    error = error_of(*slide("S", live("trained-attention", steps=20000, d_model=512, heads=8)), meta=build_dirs)
    assert error.key == "steps" and time.perf_counter() - start < 5


def test_a_key_written_twice_is_named(build_dirs, monkeypatch, tmp_path):
    from conftest import filter_deck

    deck = tmp_path / "dos.md"
    deck.write_text("---\ntitle: Dos\nlang: es\n---\n\n# S\n\n```{.attention seed=1 seed=2}\nel gato\n```\n")
    with pytest.raises(BlockError) as caught:
        filter_deck(deck, build_dirs, monkeypatch)
    assert caught.value.key == "seed" and "dos.md:8" in str(caught.value)


def test_nan_in_a_blocks_data_is_an_error(build_dirs):
    import panflute as pf

    block = pf.CodeBlock("slide.data(x=[1.0, float('nan')])", classes=["python", "run"])
    error = error_of(*slide("S", block), meta=build_dirs)
    assert "nan" in str(error) and "«S»" in str(error)


def test_slide_level_must_be_a_level(build_dirs):
    doc = make_doc(*slide("S", live("posenc", num_positions=8, d_model=8, dims=0)), meta=build_dirs)
    doc.metadata["slide-level"] = "abc"
    with pytest.raises(BlockError) as caught:
        main(doc)
    assert caught.value.key == "slide-level"


def test_a_byte_order_mark_before_a_body_is_no_text(build_dirs):
    main(make_doc(*slide("S", live("attention", "\ufeff#| seed: 3\nel gato come", ident="a")), meta=build_dirs))
    data = json.loads(next(Path("build/figures/deck-de-prueba").glob("a-*.json")).read_text())
    assert data["tokens"] == ["el", "gato", "come"] and data["seed"] == 3


def test_combining_marks_stay_in_their_word():
    from engine.tokens import tokenize

    assert tokenize("İstanbul") == ["i̇stanbul"]
    assert tokenize("g̃uaraní ñe'ẽ") == ["g̃uaraní", "ñe", "'", "ẽ"]
    assert tokenize("हिन्दी भाषा") == ["हिन्दी", "भाषा"]
    assert tokenize("\ufeffel\u200bgato") == ["el", "gato"]


def test_a_folder_that_cannot_be_written_is_a_message_not_a_traceback(tmp_path):
    """The figures folder is a file: the filter says where it could not write."""
    Path(tmp_path / "build").mkdir()
    Path(tmp_path / "build" / "figures").write_text("a file in the way")
    doc = make_doc(*slide("S", live("posenc", num_positions=8, d_model=8, dims=0)),
                   meta={"figures-dir": "build/figures", "cache-dir": "build/cache", "jobs": 1})
    stream = json.dumps(doc.to_json())
    done = subprocess.run([sys.executable, "-m", "filters", "beamer"], input=stream, capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert done.returncode == 1 and "cannot write" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_emoji_sequences_and_flags_are_one_token_and_invisible_characters_none():
    from engine.tokens import tokenize

    assert tokenize("me gusta 👍🏽 y ❤️ en 🇪🇸") == ["me", "gusta", "👍🏽", "y", "❤️", "en", "🇪🇸"]
    assert tokenize("👩‍💻 programa") == ["👩\u200d💻", "programa"]
    assert tokenize("el\x00gato\x07 come") == ["el", "gato", "come"], "control characters are no token"


@pytest.mark.parametrize(("line", "caption"), [("#| caption: Atención #1 del curso", "Atención #1 del curso"),
                                               ("#| caption: No", "No"), ("#| caption: 12:30", "12:30"),
                                               ('#| caption: "Hola: mundo"', "Hola: mundo")])
def test_a_text_option_is_read_as_written(line, caption):
    """YAML would make 'No' false, '12:30' the number 750 and ' #1' a comment."""
    from filters.blocks.options import parse_options
    from filters.kinds import KINDS

    assert parse_options(KINDS["attention"].options, {}, f"{line}\nel gato").caption == caption


@pytest.mark.parametrize(("caption", "text", "emph"), [("(a) Pesos *con* máscara", "(a) Pesos con máscara", True),
                                                        ("ii. Segundo paso: la matriz $A$", "ii. Segundo paso: la matriz A",
                                                         False)])
def test_captions_that_start_like_other_list_markers_stay_captions(build_dirs, caption, text, emph):
    import panflute as pf

    doc = main(make_doc(*slide("S", live("posenc", ident="pe", num_positions=8, d_model=8, dims=0, caption=caption)),
                        meta=build_dirs))
    found = []
    doc.walk(lambda e, d: found.append(e) if isinstance(e, pf.Figure) else None)
    assert pf.stringify(found[0].caption) == text
    assert bool([1 for e in found[0].caption.content[0].content if isinstance(e, pf.Emph)]) == emph


def test_a_caption_that_is_only_a_comment_is_no_caption(build_dirs):
    import panflute as pf

    doc = main(make_doc(*slide("S", live("posenc", ident="pe", num_positions=8, d_model=8, dims=0,
                                         caption="<!-- pendiente -->")), meta=build_dirs))
    found = []
    doc.walk(lambda e, d: found.append(e) if isinstance(e, (pf.Figure, pf.Str)) else None)
    assert not [e for e in found if isinstance(e, pf.Figure)] and "pendiente" not in pf.stringify(doc)


def test_more_captions_than_figures_names_the_block_and_leaves_nothing(build_dirs):
    import panflute as pf

    block = pf.CodeBlock('#| fig-cap: ["a", "b"]\nplt.plot([1, 2])', identifier="exp", classes=["python", "run"])
    error = error_of(*slide("Mi experimento", block), meta=build_dirs)
    assert error.key == "fig_cap" and "«Mi experimento»" in str(error) and "#exp" in str(error)
    assert not list(Path("build/figures").rglob("exp*"))


def test_a_handout_drops_the_repeated_title_not_the_first(build_dirs):
    """Found by the fuzz suite: list.remove() on panflute's content dropped the first of two equal
    headers (elements compare by content), so the handout's first figure came before any title."""
    import panflute as pf

    doc = main(make_doc(*slide("Dos", live("posenc", ident="a", num_positions=8, d_model=8, dims=0)),
                        *slide("Dos", live("posenc", ident="b", num_positions=9, d_model=8, dims=0)),
                        meta=build_dirs, fmt="latex"))
    assert [type(b).__name__ for b in doc.content][:1] == ["Header"]
    assert sum(isinstance(b, pf.Header) for b in doc.content) == 1


def test_an_id_that_is_the_name_of_another_blocks_picture_is_refused(build_dirs):
    code = "import matplotlib.pyplot as plt\nfor _ in range(2):\n    plt.figure(); plt.plot([1, 2])\n"
    error = error_of(*slide("Dos figuras", live("run", code, ident="a", caption="Una.")),
                     *slide("Otra", live("posenc", ident="a-1", num_positions=8, d_model=8, dims=0)), meta=build_dirs)
    assert error.key == "id" and "«Otra»" in str(error) and "#a-1" in str(error) and ".run #a" in str(error)


def test_numbers_as_lecturers_write_them_and_defaults_that_fit(build_dirs, figures):
    """1e-3 is a number (YAML 1.1 reads it as text); .posenc's default curves are those that exist."""
    main(make_doc(*slide("S", live("attention-steps", "#| q: [[1e-3, 1], [0, 1]]\n#| k: [[1, 0], [0, 1]]\n"
                                   "#| v: [[1, 2], [3, 4]]", ident="ej"),
                         live("posenc", ident="pe", num_positions=8, d_model=8)), meta=build_dirs))
    assert json.loads((figures / "ej.json").read_text())["q"][0][0] == 0.001
    assert json.loads((figures / "pe.json").read_text())["dims"] == [0, 1]


def test_a_key_written_twice_in_the_hash_pipe_lines_is_an_error(build_dirs):
    error = error_of(*slide("S", live("attention", '#| caption: "a"\n#| caption: "b"\nel gato')), meta=build_dirs)
    assert "'caption' is given twice" in str(error) and "«S»" in str(error)


# ---- no silent escapes: a control character where LaTeX was meant is an error ----

# A YAML escape, the LaTeX it most likely ate, and the command a lecturer writes with it.
ESCAPES = [("t", "\t", "$d_\\text{model}$"), ("b", "\b", "$\\beta$"), ("f", "\f", "$\\frac{1}{2}$"),
           ("a", "\a", "$\\alpha$"), ("v", "\v", "$\\vec{x}$"), ("r", "\r", "$\\rho$"), ("n", "\n", "$x_\\nu$")]


@pytest.mark.parametrize(("letter", "char", "latex"), ESCAPES)
def test_a_yaml_escape_in_a_hash_pipe_caption_is_an_error_naming_it(build_dirs, letter, char, latex):
    body = f'#| caption: "{latex}"\nel gato'  # double quotes: YAML reads \t as a tab
    error = error_of(*slide("S", live("attention", body, ident="fig-a")), meta=build_dirs)
    text = str(error)
    assert error.key == "caption" and "«S»" in text and "#fig-a" in text
    assert f"\\{letter}" in text and "single quotes" in text and 'r"..."' in text
    assert latex in text, "the message shows the text as it was meant"


@pytest.mark.parametrize(("letter", "char", "latex"), ESCAPES)
def test_a_control_character_in_an_attribute_or_metadata_caption_is_an_error(build_dirs, letter, char, latex):
    written = latex.replace(f"\\{letter}", char, 1)
    error = error_of(*slide("S", live("attention", "el gato", ident="fig-a", caption=written)), meta=build_dirs)
    assert error.key == "caption" and "«S»" in str(error) and f"\\{letter}" in str(error)
    error = error_of(*slide("S", live("attention", "el gato")), meta={**build_dirs, "attention": {"caption": written}})
    assert error.key == "caption" and "(metadata)" in str(error) and latex in str(error)


def test_a_control_character_in_any_hash_pipe_value_is_an_error(build_dirs):
    error = error_of(*slide("S", live("run", '#| fig-cap: ["uno", "$\\beta$"]\nplt.figure()')), meta=build_dirs)
    assert error.key == "fig_cap" and "\\b" in str(error)
    error = error_of(*slide("S", live("attention", '#| alt: "\\theta"\nel gato')), meta=build_dirs)
    assert error.key == "alt" and "\\t" in str(error)


@pytest.mark.parametrize("body", ["#| caption: '$d_\\text{model}$'\nel gato", "#| caption: $d_\\text{model}$\nel gato",
                                  '#| caption: "una\\nlínea, $\\\\nu$"\nel gato'])
def test_latex_written_as_advised_is_no_error(build_dirs, body):
    from filters.blocks.options import parse_options
    from filters.kinds import KINDS

    options = parse_options(KINDS["attention"].options, {}, body)
    assert "\t" not in options.caption and "$" in options.caption
