"""The deck's live experiments say what their captions claim, checked against closed forms."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import live, make_doc, slide

from filters.pandoc.filter import main

SENTENCE = "el gato se sentó en la alfombra"


def run(block, build_dirs, figures, name):
    main(make_doc(*slide("S", block), meta=build_dirs))
    return json.loads((figures / f"{name}.json").read_text())


def test_without_positions_permuting_tokens_permutes_the_weights(build_dirs, figures):
    data = run(live("permutation", SENTENCE, ident="p", order="[2, 0, 1, 6, 5, 3, 4]"), build_dirs, figures, "p")
    order = data["order"]
    weights, permuted = np.array(data["weights"]), np.array(data["permuted_weights"])
    assert data["permuted_tokens"] == [SENTENCE.split()[i] for i in order]
    np.testing.assert_allclose(permuted, weights[np.ix_(order, order)], atol=1e-6)
    assert data["max_difference"] < 1e-6


def test_with_positions_the_order_matters(build_dirs, figures):
    data = run(live("permutation", SENTENCE, ident="q", positional="true"), build_dirs, figures, "q")
    order = data["order"]
    gap = np.abs(np.array(data["permuted_weights"]) - np.array(data["weights"])[np.ix_(order, order)]).max()
    assert gap > 1e-2 and data["max_difference"] == pytest.approx(gap, abs=1e-6)


def test_scaling_matches_the_variance_argument(build_dirs, figures):
    """q·k of unit-variance entries has variance d_k (§3.2.1, footnote 4): std √d_k, and 1 once scaled."""
    data = run(live("scaling", ident="s", d_k="[1, 16, 256]", samples=4000), build_dirs, figures, "s")
    for d_k, raw, scaled in zip(data["d_k"], data["score_std_unscaled"], data["score_std_scaled"], strict=True):
        assert raw == pytest.approx(math.sqrt(d_k), rel=0.1)
        assert scaled == pytest.approx(1.0, rel=0.1)
    unscaled = data["max_weight_unscaled"]
    assert unscaled[0] < unscaled[1] < unscaled[2] and unscaled[2] > 0.9, "softmax saturates without the scale"
    # Scaled, the scores tend to N(0, 1) as d_k grows (central limit), so the largest weight tends to
    # that of softmax over `keys` standard normal scores: estimated here with numpy alone.
    z = np.random.default_rng(0).standard_normal((200_000, data["keys"]))
    softmax = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    assert data["max_weight_scaled"][-1] == pytest.approx(softmax.max(1).mean(), abs=0.02)
    assert all(1 / data["keys"] < w <= 1 for w in data["max_weight_scaled"])


def test_trained_attention_learned_to_reverse(build_dirs, figures):
    data = run(live("trained-attention", ident="t", seq_len=6), build_dirs, figures, "t")
    L = len(data["tokens"])
    assert data["accuracy"] == 1.0
    assert data["prediction"] == data["tokens"][::-1]
    assert np.argmax(np.array(data["weights"]), axis=1).tolist() == [L - 1 - i for i in range(L)]
    np.testing.assert_allclose(np.array(data["weights"]).sum(1), 1.0, atol=1e-6)
