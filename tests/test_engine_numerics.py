"""Honest numerics: the engine's two attention paths agree for every input, finite or not; half
precision is reduced in float32; shapes that could be read two ways raise. Each case is a bug
report filed against other attention code (the issue numbers are PyTorch's)."""

from __future__ import annotations

import pytest
import torch

from engine.attention import scaled_dot_product_attention as sdpa
from engine.block import LayerNorm
from engine.positional import rotary_embedding


def both(q, k, v, mask=None, **kw):
    """(manual output, fast output)."""
    return sdpa(q, k, v, mask, need_weights=True, **kw)[0], sdpa(q, k, v, mask, need_weights=False, **kw)[0]


def qkv(L=4, S=5, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(L, d, generator=g), torch.randn(S, d, generator=g), torch.randn(S, d, generator=g))


def reference(q, k, v, allowed):
    """softmax over the allowed keys only, computed key by key in float64 (no masking tricks)."""
    out = torch.zeros(q.shape[0], v.shape[1], dtype=torch.float64)
    for i in range(q.shape[0]):
        keys = [j for j in range(k.shape[0]) if allowed[i, j]]
        if not keys:
            continue
        scores = torch.stack([(q[i].double() @ k[j].double()) / k.shape[1] ** 0.5 for j in keys])
        weights = torch.softmax(scores, 0)
        out[i] = sum(w * v[j].double() for w, j in zip(weights, keys, strict=True))
    return out


def test_a_dead_row_is_zero_and_a_real_nan_elsewhere_stays(monkeypatch):
    """Before: the fast path zeroed the *whole* output (nan_to_num_) when any row was fully masked."""
    q, k, v = qkv()
    q[1, 0] = float("nan")  # query 1 really is NaN
    allowed = torch.ones(4, 5, dtype=torch.bool)
    allowed[2] = False  # query 2 sees nothing
    for out in both(q, k, v, allowed):
        assert torch.isnan(out[1]).all() and torch.equal(out[2], torch.zeros(3))
        torch.testing.assert_close(out[[0, 3]].double(), reference(q, k, v, allowed)[[0, 3]], rtol=1e-5, atol=1e-6)


def test_a_dead_row_whose_value_holds_inf_is_zero_not_nan():
    """Before: the manual path gave 0·inf = NaN for a fully masked row (pytorch#103749)."""
    q, k, v = qkv()
    v[0, 0] = float("inf")
    allowed = torch.ones(4, 5, dtype=torch.bool)
    allowed[:, 0] = False  # nobody sees key 0
    allowed[3] = False
    for out in both(q, k, v, allowed):
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out.double(), reference(q, k, v, allowed), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_dead_row_is_positive_zero_whatever_its_query_holds(value):
    """The fast path zeroes a dead row by multiplying it by 0: a NaN there, or a negative number (which
    would print as "-0.00" on a slide), must come out +0.0 all the same."""
    q, k, v = qkv()
    q[2, 0] = value
    v = -v.abs()  # every output negative: times 0 it would be -0.0
    allowed = torch.ones(4, 5, dtype=torch.bool)
    allowed[2] = False  # query 2 sees nothing
    for mask in (allowed, torch.zeros(4, 5).masked_fill(~allowed, float("-inf"))):
        for out in both(q, k, v, mask):
            assert torch.equal(out[2], torch.zeros(3)) and not torch.signbit(out[2]).any()
            assert torch.isfinite(out[[0, 1, 3]]).all() and (out[[0, 1, 3]] < 0).all()


def test_an_overflow_under_a_mask_stays_nan_on_both_paths():
    """Finite inputs whose scores overflow float32 give NaN on the manual path (inf - inf in the
    softmax); the fast path, which clears non-finite output before zeroing dead rows, must not turn
    that into a finite number."""
    q, k, v = qkv()
    q[0], k[1] = 1e30, 1e30
    allowed = torch.ones(4, 5, dtype=torch.bool)
    allowed[3] = False
    manual, fast = both(q, k, v, allowed)
    assert torch.isnan(manual[0]).all() and torch.isnan(fast[0]).all()
    assert torch.equal(fast[3], torch.zeros(3))


@pytest.mark.parametrize("where", ["k", "v"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_masked_out_key_or_value_changes_nothing_on_either_path(where, value):
    """Before: a NaN in a masked-out key was ignored by the manual path and made the fast path all
    NaN (pytorch#101967)."""
    q, k, v = qkv()
    (k if where == "k" else v)[4, 1] = value
    allowed = torch.ones(4, 5, dtype=torch.bool)
    allowed[:, 4] = False
    additive = torch.zeros(4, 5).masked_fill(~allowed, float("-inf"))
    for mask in (allowed, additive):
        manual, fast = both(q, k, v, mask)
        assert torch.isfinite(manual).all() and torch.isfinite(fast).all()
        torch.testing.assert_close(manual, fast, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(manual.double(), reference(q, k, v, allowed), rtol=1e-5, atol=1e-6)


def test_a_non_finite_value_a_query_sees_reaches_it_on_both_paths():
    q, k, v = qkv()
    v[2, 0] = float("nan")
    manual, fast = both(q, k, v, is_causal=True)  # query i sees keys j <= i + (S - L): key 2 from query 1 on
    assert torch.equal(torch.isnan(manual), torch.isnan(fast))
    assert not torch.isnan(manual[0]).any() and torch.isnan(manual[1:, 0]).all()


def test_layer_norm_in_half_precision_does_not_overflow():
    """Before: the variance of [1000, -1000, 500, -500] in float16 overflowed and the output was zeros
    (pytorch#66707). Reference: torch's layer_norm in float32."""
    x = torch.tensor([[1000.0, -1000.0, 500.0, -500.0]])
    norm = LayerNorm(4)
    expected = torch.nn.functional.layer_norm(x, (4,), eps=1e-5)
    for dtype in (torch.float16, torch.bfloat16):
        out = norm.to(dtype)(x.to(dtype))
        assert out.dtype == dtype and torch.isfinite(out).all()
        torch.testing.assert_close(out.float(), expected, rtol=2e-2, atol=2e-2)


def test_a_mask_that_could_line_up_two_ways_raises():
    """(B, L, S) against (B, H, L, S) scores would line B up with H: with B == H == 2 the wrong
    sequences would be masked, silently."""
    q = torch.randn(2, 2, 3, 4)  # (B, H, L, d_k)
    per_sequence = torch.ones(2, 3, 3, dtype=torch.bool)  # (B, L, S)
    with pytest.raises(ValueError, match="ambiguous"):
        sdpa(q, q, q, per_sequence)
    sdpa(q, q, q, per_sequence[:, None])  # (B, 1, L, S): one mask per sequence, every head
    sdpa(q, q, q, per_sequence[0])  # (L, S): every sequence


def test_rotary_positions_that_could_line_up_two_ways_raise():
    x = torch.randn(2, 2, 3, 4)  # (B, H, L, d)
    positions = torch.tensor([[0, 1, 2], [5, 6, 7]])  # (B, L)
    with pytest.raises(ValueError, match="positions of shape"):
        rotary_embedding(x, positions)
    out = rotary_embedding(x, positions[:, None])  # (B, 1, L)
    torch.testing.assert_close(out[1], rotary_embedding(x[1], positions[1]))


def test_a_word_has_one_vector_whatever_the_sentence():
    """Token vectors depend on the token's text and the seed, not on the order words first appear
    in (two sentences with one pattern of repeats had the same heatmap)."""
    import hashlib

    from engine.embedding import TokenEmbedding
    from engine.tokens import Vocabulary, tokenize

    def table(sentence):
        vocab = Vocabulary(tokenize(sentence))
        return vocab, TokenEmbedding(len(vocab), 16, seed=3, tokens=vocab.itos).table.weight.detach()

    first, a = table("o gato sentou no tapete")
    second, b = table("el gato come")
    assert torch.equal(a[first.stoi["gato"]], b[second.stoi["gato"]])
    other, c = table("go modules pick minimal versions")
    assert not torch.allclose(a[first.stoi["o"]], c[other.stoi["go"]])
    seed = int.from_bytes(hashlib.sha256(b"3\0gato").digest()[:8], "little") & (2**63 - 1)
    expected = torch.randn(16, generator=torch.Generator().manual_seed(seed)) / 4  # N(0, 1/d_model)
    assert torch.allclose(a[first.stoi["gato"]], expected)


@pytest.mark.parametrize("seed", range(40))
def test_both_paths_give_one_answer_for_random_non_finite_inputs(seed):
    """The rule, checked against the reference on random inputs and masks: a non-finite entry a
    query may not see changes nothing; a query that is not finite, or may see a key or value that
    is not, is NaN; a query that sees no key is zero."""
    g = torch.Generator().manual_seed(seed)
    q, k, v = qkv(seed=seed)
    for t in (q, k, v):
        spots = torch.rand(t.shape, generator=g) < 0.08
        t[spots] = torch.tensor([float("nan"), float("inf"), -float("inf")])[torch.randint(3, t.shape, generator=g)][spots]
    allowed = torch.rand(4, 5, generator=g) < 0.6
    causal = bool(seed % 2)
    if causal:
        allowed &= torch.ones(4, 5, dtype=torch.bool).tril(diagonal=1)  # causal_mask(4, 5): bottom-right aligned
    manual, fast = both(q, k, v, allowed, is_causal=causal)
    assert torch.equal(torch.isnan(manual), torch.isnan(fast))
    torch.testing.assert_close(manual, fast, rtol=1e-5, atol=1e-6, equal_nan=True)
    expected = reference(torch.where(q.isfinite(), q, 0), torch.where(k.isfinite(), k, 0),
                         torch.where(v.isfinite(), v, 0), allowed)
    sees = lambda t: (allowed & ~t.isfinite().all(-1)).any(-1)  # noqa: E731 — a query sees a bad key/value
    poisoned = (~q.isfinite().all(-1) | sees(k) | sees(v)) & allowed.any(-1)
    expected[poisoned] = float("nan")
    torch.testing.assert_close(manual.double(), expected, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_an_infinite_key_a_query_sees_makes_it_nan_on_both_paths():
    """Before: +inf in a visible key gave NaN or a finite row depending on the signs in q (the
    arithmetic decided), and the fast path fell back to the manual one, waiting for the GPU."""
    q, k, v = qkv()
    k[2, 0] = -float("inf")
    for out in both(q, k, v, is_causal=True):  # query i sees keys j <= i + 1
        assert not torch.isnan(out[0]).any() and torch.isnan(out[1:]).all()
