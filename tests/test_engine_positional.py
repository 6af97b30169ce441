"""Positional encodings against formulas written out here, independently of the engine."""

import math

import numpy as np
import pytest
import torch

from engine.positional import (
    LearnedPositionalEmbedding,
    alibi_bias,
    alibi_slopes,
    rotary_embedding,
    sinusoidal_encoding,
)


def numpy_sinusoidal(P: int, d: int, base: float = 10000.0) -> np.ndarray:
    """Vaswani et al. 2017, §3.5, one entry at a time."""
    pe = np.zeros((P, d))
    for pos in range(P):
        for j in range(d):
            i = j // 2
            angle = pos / base ** (2 * i / d)
            pe[pos, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return pe


@pytest.mark.parametrize("d_model", [1, 2, 7, 16, 33])
@pytest.mark.parametrize("base", [10000.0, 100.0])
def test_sinusoidal_matches_the_paper_formula(d_model, base):
    got = sinusoidal_encoding(50, d_model, base)
    assert got.shape == (50, d_model) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), numpy_sinusoidal(50, d_model, base), atol=1e-6)


def test_sinusoidal_known_values():
    pe = sinusoidal_encoding(3, 4)
    # pos 1: sin(1), cos(1), sin(1/100), cos(1/100)
    np.testing.assert_allclose(pe[1].numpy(), [0.841471, 0.540302, 0.0099998, 0.99995], atol=1e-6)


@pytest.mark.parametrize("bad", [(0, 4), (4, 0)])
def test_sinusoidal_rejects_empty(bad):
    with pytest.raises(ValueError):
        sinusoidal_encoding(*bad)


def test_learned_embedding_looks_up_its_table_and_rejects_out_of_range():
    emb = LearnedPositionalEmbedding(10, 4, seed=0)
    assert torch.equal(emb(3), emb.table.weight[:3])
    assert torch.equal(emb(torch.tensor([[9, 0]])), emb.table.weight[[9, 0]][None])
    with pytest.raises(ValueError, match="positions must lie"):
        emb(11)


def test_learned_embedding_is_deterministic_under_seed():
    a, b, c = (LearnedPositionalEmbedding(10, 4, seed=s).table.weight for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert 0.005 < a.std().item() < 0.05  # N(0, 0.02²)


# ---- RoPE (Su et al. 2021, §3.4.2) ----

def rotation(angle: float) -> np.ndarray:
    return np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])


def numpy_rope(x: np.ndarray, positions, base: float, pairs) -> np.ndarray:
    """Rotate each pair ``(a, b)`` of ``x[m]`` by ``m·θ_i``, with an explicit 2×2 rotation matrix."""
    d = x.shape[-1]
    out = np.empty_like(x)
    for row, m in enumerate(positions):
        for i, (a, b) in enumerate(pairs(d)):
            theta = base ** (-2 * i / d)
            out[row, [a, b]] = rotation(m * theta) @ x[row, [a, b]]
    return out


def interleaved(d):
    return [(2 * i, 2 * i + 1) for i in range(d // 2)]


def half_split(d):
    return [(i, i + d // 2) for i in range(d // 2)]


def test_rope_rotates_a_2d_vector_by_position_times_theta():
    x = torch.tensor([[1.0, 0.0]] * 4)  # (L=4, d=2); θ_0 = 1
    got = rotary_embedding(x)
    expected = [[math.cos(m), math.sin(m)] for m in range(4)]
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("interleave, pairs", [(True, interleaved), (False, half_split)])
def test_rope_matches_blockwise_rotation(interleave, pairs):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 8, generator=g, dtype=torch.float64)
    positions = [0, 1, 2, 5, 11, 100]
    got = rotary_embedding(x, torch.tensor(positions), base=50.0, interleaved=interleave)
    np.testing.assert_allclose(got.numpy(), numpy_rope(x.numpy(), positions, 50.0, pairs), atol=1e-12)


@pytest.mark.parametrize("interleave", [True, False])
def test_rope_scores_depend_only_on_relative_position(interleave):
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(2, 1, 16, generator=g, dtype=torch.float64)

    def score(m, n):
        qm = rotary_embedding(q, torch.tensor([m]), interleaved=interleave)
        kn = rotary_embedding(k, torch.tensor([n]), interleaved=interleave)
        return (qm @ kn.T).item()

    for shift in (1, 7, 300):
        assert score(3, 5) == pytest.approx(score(3 + shift, 5 + shift), abs=1e-9)
    assert score(3, 5) != pytest.approx(score(3, 6), abs=1e-3)  # a different offset does change it
    assert score(0, 0) == pytest.approx((q @ k.T).item(), abs=1e-12)  # position 0: no rotation


def test_rope_keeps_shape_dtype_and_norm_and_rejects_odd_width():
    x = torch.randn(2, 3, 5, 8, dtype=torch.bfloat16)
    y = rotary_embedding(x)
    assert y.shape == x.shape and y.dtype == torch.bfloat16
    x32 = torch.randn(2, 5, 8)
    torch.testing.assert_close(rotary_embedding(x32).norm(dim=-1), x32.norm(dim=-1))
    with pytest.raises(ValueError, match="even"):
        rotary_embedding(torch.randn(4, 7))


# ---- ALiBi (Press et al. 2021, §3) ----

def test_alibi_slopes_for_8_heads_are_the_published_ones():
    assert alibi_slopes(8).tolist() == [1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64, 1 / 128, 1 / 256]


def test_alibi_slopes_for_12_heads_interpolate():
    # 8 slopes of the 8-head rule, then the odd-numbered slopes of the 16-head rule (2^-0.5k, k odd)
    expected = [2.0 ** -k for k in range(1, 9)] + [2.0 ** -(k / 2) for k in (1, 3, 5, 7)]
    np.testing.assert_allclose(alibi_slopes(12).numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("H", [1, 2, 3, 4, 5, 6, 16, 20, 24, 31, 64])
def test_alibi_slopes_for_any_head_count(H):
    p = 2 ** int(math.log2(H))
    expected = [2.0 ** (-8 * k / p) for k in range(1, p + 1)]
    expected += [2.0 ** (-8 * (2 * j - 1) / (2 * p)) for j in range(1, H - p + 1)]
    got = alibi_slopes(H).numpy()
    assert got.shape == (H,)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert len(set(got.tolist())) == H  # every head has its own slope


def test_alibi_bias_values():
    bias = alibi_bias(2, 3)  # slopes 1/16, 1/256
    distance = np.array([[0, 1, 2], [1, 0, 1], [2, 1, 0]])
    np.testing.assert_allclose(bias.numpy(), -np.array([1 / 16, 1 / 256])[:, None, None] * distance)
    # queries = the last L of S positions: the last query sees the last key at distance 0
    wide = alibi_bias(8, 2, 5)
    assert wide.shape == (8, 2, 5)
    np.testing.assert_allclose(wide[0].numpy(), -0.5 * np.array([[3, 2, 1, 0, 1], [4, 3, 2, 1, 0]]))
    with pytest.raises(ValueError):
        alibi_bias(4, 5, 3)
    with pytest.raises(ValueError):
        alibi_slopes(0)
