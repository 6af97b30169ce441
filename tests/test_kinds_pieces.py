"""The kinds that show one engine piece each — .multihead, .block, .posenc-compare, causal
.attention-steps — against independent references (torch's own modules, closed forms, numpy), and
long sentences drawn readably."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import DECKS, figures_of, filter_deck, live, make_doc, slide
from matplotlib.backends.backend_agg import FigureCanvasAgg

from engine.attention import MultiHeadAttention
from engine.block import TransformerBlock
from filters.errors import BlockError
from filters.figures.render import render
from filters.kinds import KINDS
from filters.pandoc.filter import main

SENTENCE = "el gato se sentó en la alfombra"


def run(block, build_dirs, figures, name):
    main(make_doc(*slide("S", block), meta=build_dirs))
    return json.loads((figures / f"{name}.json").read_text())


def torch_mha_like(ours: MultiHeadAttention) -> torch.nn.MultiheadAttention:
    """torch's module with our layer's weights copied in (the other way from ``from_torch``)."""
    theirs = torch.nn.MultiheadAttention(ours.d_model, ours.num_heads, batch_first=True)
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.cat([ours.W_Q.weight, ours.W_K.weight, ours.W_V.weight]))
        theirs.in_proj_bias.copy_(torch.cat([ours.W_Q.bias, ours.W_K.bias, ours.W_V.bias]))
        theirs.out_proj.weight.copy_(ours.W_O.weight)
        theirs.out_proj.bias.copy_(ours.W_O.bias)
    return theirs.eval()


@pytest.mark.parametrize("causal", [False, True])
def test_multihead_weights_equal_torch_multiheadattention_per_head(build_dirs, figures, causal):
    data = run(live("multihead", SENTENCE, ident="m", heads=4, d_model=16, seed=3, causal=str(causal).lower()),
               build_dirs, figures, "m")
    theirs = torch_mha_like(MultiHeadAttention(16, 4, seed=4))  # the layer's weights come from seed + 1
    x = torch.tensor(data["x"], dtype=torch.float32)[None]  # (1, L, d_model)
    L = x.shape[1]
    mask = torch.ones(L, L, dtype=torch.bool).triu(1) if causal else None  # torch: True = may NOT attend
    with torch.no_grad():
        output, weights = theirs(x, x, x, attn_mask=mask, need_weights=True, average_attn_weights=False)
    np.testing.assert_allclose(data["head_weights"], weights[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(data["output"], output[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(data["average_weights"], weights[0].mean(0).numpy(), atol=1e-6)
    assert (figures / "m.pdf").is_file()


@pytest.mark.parametrize("norm_first", [False, True])
def test_block_output_equals_torch_transformer_encoder_layer(build_dirs, figures, norm_first):
    data = run(live("block", SENTENCE, ident="b", heads=2, d_model=16, seed=5, norm_first=str(norm_first).lower()),
               build_dirs, figures, "b")
    ours = TransformerBlock(16, 2, 64, norm_first=norm_first, seed=6)
    theirs = torch.nn.TransformerEncoderLayer(16, 2, 64, dropout=0.0, batch_first=True, norm_first=norm_first)
    with torch.no_grad():
        theirs.self_attn.load_state_dict(torch_mha_like(ours.attn).state_dict())
        for mine, their in ((ours.ff.W_1, theirs.linear1), (ours.ff.W_2, theirs.linear2),
                            (ours.residual1.norm, theirs.norm1), (ours.residual2.norm, theirs.norm2)):
            their.weight.copy_(mine.weight)
            their.bias.copy_(mine.bias)
    theirs.eval()
    x = torch.tensor(data["x"], dtype=torch.float32)[None]
    with torch.no_grad():
        expected = theirs(x)  # (1, L, d_model)
    np.testing.assert_allclose(data["output"], expected[0].numpy(), atol=1e-5)
    # the bars: each sub-layer's update against the stream it updates, recomputed from the vectors
    x, attention, middle, feedforward = (np.array(data[k]) for k in ("x", "attention_update", "middle",
                                                                      "feedforward_update"))
    np.testing.assert_allclose(data["attention_ratio"], np.linalg.norm(attention, axis=1) / np.linalg.norm(x, axis=1),
                               rtol=1e-5)
    np.testing.assert_allclose(data["feedforward_ratio"],
                               np.linalg.norm(feedforward, axis=1) / np.linalg.norm(middle, axis=1), rtol=1e-5)
    if norm_first:  # pre-norm: the stream is never normalised, updates are added as they are
        np.testing.assert_allclose(middle, x + attention, atol=1e-5)
        np.testing.assert_allclose(data["output"], middle + feedforward, atol=1e-5)


def test_posenc_compare_against_closed_forms(build_dirs, figures):
    data = run(live("posenc-compare", ident="p", positions=12, d_model=16), build_dirs, figures, "p")
    similarity = {name: np.array(m) for name, m in data["similarity"].items()}
    i, j = np.meshgrid(np.arange(12), np.arange(12), indexing="ij")
    omega = 10000.0 ** (-np.arange(0, 16, 2) / 16)  # (8,)
    # ⟨P_i, P_j⟩ = Σ_k sin(ω_k i) sin(ω_k j) + cos(ω_k i) cos(ω_k j) = Σ_k cos(ω_k (i − j))
    expected = np.cos(omega[None, None, :] * (i - j)[..., None]).sum(-1) / 8
    np.testing.assert_allclose(similarity["sinusoidal"], expected, atol=1e-5)
    np.testing.assert_allclose(similarity["alibi"], -0.5 * np.abs(i - j), atol=1e-6)  # head 1 of 8: m = 1/2
    assert data["alibi_slope"] == 0.5

    def relative(m):  # depends on i and j only through j − i
        return np.allclose(m[1:, 1:], m[:-1, :-1], atol=1e-5)

    assert relative(similarity["sinusoidal"]) and relative(similarity["rope"]) and relative(similarity["alibi"])
    assert not relative(similarity["learned"]), "an untrained table knows nothing of distance"
    np.testing.assert_allclose(np.diag(similarity["rope"]), 1.0, atol=1e-5)


@pytest.mark.parametrize("shape", [(3, 3), (2, 4)])
def test_causal_steps_against_numpy(build_dirs, figures, shape):
    L, S = shape
    rng = np.random.default_rng(L)
    q, k, v = rng.integers(-2, 3, (L, 2)), rng.integers(-2, 3, (S, 2)), rng.integers(-2, 3, (S, 2))
    body = f"#| q: {q.tolist()}\n#| k: {k.tolist()}\n#| v: {v.tolist()}\n"
    main(make_doc(*slide("S", live("attention-steps", body, ident="c", causal="true")), meta=build_dirs))
    data = json.loads((figures / "c.json").read_text())
    allowed = np.tril(np.ones((L, S), dtype=bool), k=S - L)  # query i sees keys up to i + S − L
    scores = q @ k.T / math.sqrt(2)
    masked = np.where(allowed, scores, -np.inf)
    weights = np.exp(masked - masked.max(1, keepdims=True))
    weights /= weights.sum(1, keepdims=True)
    assert data["mask"] == allowed.tolist()
    assert data["scores"] == [[s if a else None for s, a in zip(r, m, strict=True)]
                              for r, m in zip(scores.tolist(), allowed.tolist(), strict=True)]
    np.testing.assert_allclose(data["weights"], weights, atol=1e-9)
    np.testing.assert_allclose(data["output"], weights @ v, atol=1e-9)


def test_causal_steps_typeset_minus_infinity(build_dirs):
    import panflute as pf

    doc = main(make_doc(*slide("S", live("attention-steps", ident="c", causal="true", length=4)), meta=build_dirs))
    (raw,) = [e for e in doc.content if isinstance(e, pf.RawBlock)]
    assert raw.text.count("-\\infty") == 6, "the 6 cells above the diagonal of a 4 × 4 score matrix"


def _overlaps(boxes) -> bool:
    return any(a.overlaps(b) for n, a in enumerate(boxes) for b in boxes[n + 1:])


def test_a_40_token_sentence_labels_its_tokens_apart_at_7_pt_and_no_numbers(build_dirs, monkeypatch, tmp_path):
    """40 tokens in 4:3 at the default height: labels at 7 pt or more, each at its own token's row or
    column, apart; where they would not fit, every second or third one (never shrunk under 7 pt)."""
    deck = DECKS / "attention-40-tokens.md"
    filter_deck(deck, build_dirs, monkeypatch)
    data = json.loads((figures_of(deck, build_dirs) / "larga.json").read_text())
    assert len(data["tokens"]) == 40
    kind = KINDS["attention"]
    options = kind.options(sentence=data["sentence"])
    fig = render(kind, data, options, tmp_path / "larga.png", lang="es")
    ax = fig.axes[0]
    renderer = FigureCanvasAgg(fig).get_renderer()
    assert not ax.texts, "the numbers are off: under 7 pt on the slide"
    assert "sin cifras" in fig.axes[-1].get_ylabel(), "and the colorbar says so"
    for axis in ("x", "y"):
        shown = [t for a in [ax, *ax.child_axes] for t in getattr(a, f"get_{axis}ticklabels")() if t.get_text()]
        assert all(t.get_fontsize() >= 7 for t in shown)
        at = [round(t.get_position()[0 if axis == "x" else 1]) for t in shown]
        assert [t.get_text() for t in shown] == [data["tokens"][i] for i in at], f"each {axis} label at its token"
        assert len(set(at)) >= 40 // 3, f"at least every third {axis} label"
        for side in {id(t.axes) for t in shown}:
            boxes = [t.get_window_extent(renderer) for t in shown if id(t.axes) == side]
            assert not _overlaps(boxes), f"{axis} labels overlap"


def test_limits_are_in_tokens(build_dirs):
    too_long = " ".join(["palabra"] * 41)
    with pytest.raises(BlockError, match="at most 40 tokens fit this figure on a slide, and the sentence has 41"):
        main(make_doc(*slide("S", live("attention", too_long)), meta=build_dirs))
    commas = ",".join(["a"] * 21)  # one "word" of 41 tokens
    with pytest.raises(BlockError, match="has 41"):
        main(make_doc(*slide("S", live("attention", commas)), meta=build_dirs))
