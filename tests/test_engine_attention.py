"""Scaled dot-product attention: a worked example, the reference kernel, and the edge-case rules
the module docstring of engine.attention promises (masks, dead rows, low precision, dropout)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.attention import MultiHeadAttention, SelfAttention, scaled_dot_product_attention
from engine.masks import causal_mask, padding_mask

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="no CUDA device: torch.cuda.is_available() is False")),
]


def numpy_attention(q, k, v, allowed=None):
    """softmax(q kᵀ / √d_k) v in float64 numpy; ``allowed`` is a boolean (L, S) mask."""
    q, k, v = (np.asarray(t, dtype=np.float64) for t in (q, k, v))
    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    scores = scores - scores.max(axis=-1, keepdims=True)
    w = np.exp(scores)
    w = w / w.sum(axis=-1, keepdims=True)
    return w @ v, w


def test_worked_example_by_hand():
    # Q = K = [[1,0],[0,1],[1,1]], V = [[1,2],[3,4],[5,6]], d_k = 2.
    # Query 0 scores: [1, 0, 1]/√2 = [0.7071, 0, 0.7071]; e^0.7071 = 2.0281, so the weights are
    # [2.0281, 1, 2.0281] / 5.0562 = [0.4011, 0.1978, 0.4011] and the output is their mix of V:
    # 0.4011·[1,2] + 0.1978·[3,4] + 0.4011·[5,6] = [3, 4] (symmetric around the middle value).
    Q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    V = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    out, w = scaled_dot_product_attention(Q, Q, V)
    expected_w = [[0.401112, 0.197776, 0.401112], [0.197776, 0.401112, 0.401112], [0.248255, 0.248255, 0.503490]]
    expected_out = [[3.0, 4.0], [3.406673, 4.406673], [3.510470, 4.510470]]
    np.testing.assert_allclose(w.numpy(), expected_w, atol=2e-6)
    np.testing.assert_allclose(out.numpy(), expected_out, atol=2e-6)
    np.testing.assert_allclose(out.numpy(), numpy_attention(Q, Q, V)[0], atol=1e-6)


def random_qkv(g, B=2, H=3, L=5, S=7, d_k=8, d_v=6, device="cpu", dtype=torch.float32):
    q = torch.randn(B, H, L, d_k, generator=g)
    k = torch.randn(B, H, S, d_k, generator=g)
    v = torch.randn(B, H, S, d_v, generator=g)
    return (t.to(device=device, dtype=dtype) for t in (q, k, v))


def random_bool_mask(g, shape):
    mask = torch.rand(shape, generator=g) > 0.4
    mask[..., 0] = True  # no query left without keys: the reference would give NaN there
    return mask


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ["none", "bool", "float", "causal", "bool+causal"])
def test_manual_and_fast_paths_match_torch_sdpa(device, kind):
    g = torch.Generator().manual_seed(len(kind))  # fixed per case (str hash is salted per process)
    q, k, v = random_qkv(g, device=device)
    mask, torch_mask, is_causal = None, None, kind.endswith("causal")
    if kind.startswith("bool"):
        mask = torch_mask = random_bool_mask(g, (2, 1, 5, 7)).to(device)
    elif kind == "float":
        mask = torch_mask = (torch.randn(5, 7, generator=g) * 2).to(device)
    if is_causal:  # ours is bottom-right aligned when S > L; give torch the same mask explicitly
        c = causal_mask(5, 7, device=device)
        torch_mask = c if torch_mask is None else torch_mask & c
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=torch_mask)
    manual, weights = scaled_dot_product_attention(q, k, v, mask, is_causal=is_causal)
    fast, none = scaled_dot_product_attention(q, k, v, mask, is_causal=is_causal, need_weights=False)
    assert none is None and weights.shape == (2, 3, 5, 7)
    torch.testing.assert_close(manual, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(fast, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5, device=device))


def test_manual_path_matches_numpy_with_a_padding_mask():
    g = torch.Generator().manual_seed(3)
    q, k, v = random_qkv(g, B=2, H=1, L=4, S=4)
    mask = padding_mask([4, 2])  # (2, 1, 1, 4)
    out, w = scaled_dot_product_attention(q, k, v, mask)
    ref_out, ref_w = numpy_attention(q, k, v, mask.numpy())
    np.testing.assert_allclose(w.numpy(), ref_w, atol=1e-6)
    np.testing.assert_allclose(out.numpy(), ref_out, atol=1e-6)
    assert (w[1, ..., 2:] == 0).all()  # padded keys get no weight


def test_causal_square_uses_torch_flag_and_agrees():
    g = torch.Generator().manual_seed(4)
    q, k, v = random_qkv(g, L=6, S=6)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    fast, _ = scaled_dot_product_attention(q, k, v, is_causal=True, need_weights=False)
    manual, w = scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(fast, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(manual, expected, atol=1e-6, rtol=0)
    assert (w.triu(diagonal=1) == 0).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("float_mask", [False, True])
def test_fully_masked_query_gets_zero_weights_and_output_on_both_paths(device, float_mask):
    g = torch.Generator().manual_seed(5)
    q, k, v = random_qkv(g, B=1, H=2, L=3, S=4, device=device)
    allowed = torch.tensor([[True, True, False, False], [False] * 4, [True] * 4], device=device)
    mask = torch.zeros(3, 4, device=device).masked_fill(~allowed, float("-inf")) if float_mask else allowed
    out, w = scaled_dot_product_attention(q, k, v, mask)
    fast, _ = scaled_dot_product_attention(q, k, v, mask, need_weights=False)
    for o in (out, fast):
        assert torch.isfinite(o).all()
        assert (o[:, :, 1] == 0).all()
    assert (w[:, :, 1] == 0).all()
    ref_out, ref_w = numpy_attention(q[:, :, [0, 2]].cpu(), k.cpu(), v.cpu(), allowed[[0, 2]].cpu().numpy())
    np.testing.assert_allclose(out[:, :, [0, 2]].cpu().numpy(), ref_out, atol=1e-6)
    np.testing.assert_allclose(fast[:, :, [0, 2]].cpu().numpy(), ref_out, atol=1e-6)
    np.testing.assert_allclose(w[:, :, [0, 2]].cpu().numpy(), ref_w, atol=1e-6)


def test_multi_head_attention_dead_rows_are_zero_where_torch_gives_nan():
    m = torch.nn.MultiheadAttention(8, 2, batch_first=True, bias=False).eval()
    ours = MultiHeadAttention.from_torch(m)
    x = torch.randn(1, 3, 8, generator=torch.Generator().manual_seed(0))
    everything_masked = torch.zeros(1, 1, 1, 3, dtype=torch.bool)
    with torch.no_grad():
        for need in (True, False):
            out, _ = ours(x, mask=everything_masked, need_weights=need)
            assert (out == 0).all()  # no bias: zero attention output stays zero after W_O


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_with_scores_of_1e4_stays_finite(device, dtype):
    d_k = 64
    q = torch.full((1, 1, 4, d_k), 25.0)
    k = torch.full((1, 1, 6, d_k), 50.0)
    k[..., 1, :] = -50.0
    v = torch.arange(6 * d_k, dtype=torch.float32).reshape(1, 1, 6, d_k) / 100
    # scaled scores: ±25·50·64/8 = ±1e4 — beyond what float16 can hold before the scale (8e4)
    q, k, v = (t.to(device=device, dtype=dtype) for t in (q, k, v))
    out, w = scaled_dot_product_attention(q, k, v)
    fast, _ = scaled_dot_product_attention(q, k, v, need_weights=False)
    for t in (out, w, fast):
        assert t.dtype == dtype and torch.isfinite(t).all()
    # 5 keys tie at +1e4 and one is at -1e4: weights 1/5, 0
    expected_w = torch.tensor([0.2, 0.0, 0.2, 0.2, 0.2, 0.2])
    torch.testing.assert_close(w[0, 0].float().cpu(), expected_w.expand(4, 6), atol=1e-3, rtol=0)
    expected_out = v[0, 0].float().cpu()[[0, 2, 3, 4, 5]].mean(0)
    torch.testing.assert_close(out[0, 0, 0].float().cpu(), expected_out, atol=2e-2, rtol=1e-2)
    torch.testing.assert_close(fast[0, 0, 0].float().cpu(), expected_out, atol=2e-2, rtol=1e-2)


def test_returned_weights_never_include_dropout():
    torch.manual_seed(0)  # dropout draws from the global generator
    g = torch.Generator().manual_seed(6)
    q, k, v = random_qkv(g, L=16, S=16)
    ref_out, ref_w = numpy_attention(q, k, v)
    out, w = scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    np.testing.assert_allclose(w.numpy(), ref_w, atol=1e-6)  # undropped, rows sum to 1
    assert not np.allclose(out.numpy(), ref_out, atol=1e-3)  # but the output did see dropout


def test_multi_head_attention_dropout_only_in_training():
    mha = MultiHeadAttention(16, 4, dropout=0.5, seed=0)
    x = torch.randn(2, 10, 16, generator=torch.Generator().manual_seed(1))
    reference = MultiHeadAttention(16, 4, dropout=0.0, seed=0).eval()
    ref_out, ref_w = reference(x)
    torch.manual_seed(0)
    out_train, w_train = mha.train()(x)
    out_eval, w_eval = mha.eval()(x)
    torch.testing.assert_close(w_train, ref_w)  # weights: never dropped
    torch.testing.assert_close(out_eval, ref_out)  # eval: no dropout at all
    assert not torch.allclose(out_train, ref_out, atol=1e-3)  # training: dropout on the output path


@pytest.mark.parametrize("bad_mask, message", [
    (torch.ones(5, 7, dtype=torch.int64), "bool .* or float"),
    (torch.ones(5, 6, dtype=torch.bool), "does not broadcast"),
    (torch.ones(3, 2, 5, 7, dtype=torch.bool), "does not broadcast"),
    ([[True] * 7] * 5, "torch.Tensor"),
])
def test_wrong_mask_raises_value_error(bad_mask, message):
    q, k, v = random_qkv(torch.Generator().manual_seed(7))
    with pytest.raises(ValueError, match=message):
        scaled_dot_product_attention(q, k, v, bad_mask)
    with pytest.raises(ValueError, match=message):
        scaled_dot_product_attention(q, k, v, bad_mask, need_weights=False)


def test_multi_head_attention_rejects_wrong_masks_and_inputs():
    mha = MultiHeadAttention(8, 2, seed=0)
    x = torch.randn(3, 4, 8)
    with pytest.raises(ValueError, match="torch's"):
        mha(x, mask=torch.ones(6, 4, 4, dtype=torch.bool))  # (B*H, L, S) is torch's layout, not ours
    with pytest.raises(ValueError, match="does not broadcast"):
        mha(x, mask=torch.ones(3, 3, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        mha(x, mask=torch.ones(4, 4, dtype=torch.int32))
    with pytest.raises(ValueError, match="last dimension 8"):
        mha(torch.randn(3, 4, 6))
    with pytest.raises(ValueError, match="must divide"):
        MultiHeadAttention(10, 3)


def test_q_k_v_shape_errors():
    with pytest.raises(ValueError, match="same d_k"):
        scaled_dot_product_attention(torch.randn(2, 4), torch.randn(3, 5), torch.randn(3, 5))
    with pytest.raises(ValueError, match="same number of keys"):
        scaled_dot_product_attention(torch.randn(2, 4), torch.randn(3, 4), torch.randn(2, 4))


def test_seeded_modules_are_deterministic_and_seeds_matter():
    x = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(0))
    a, b, c = (MultiHeadAttention(16, 4, seed=s) for s in (0, 0, 1))
    assert torch.equal(a(x)[0], b(x)[0])
    assert not torch.allclose(a(x)[0], c(x)[0])
    s1, s2 = SelfAttention(16, 8, seed=3), SelfAttention(16, 8, seed=3)
    assert torch.equal(s1(x)[1], s2(x)[1])


def test_self_attention_is_attention_of_its_projections():
    sa = SelfAttention(6, 4, 3, seed=0)
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(1))
    Wq, Wk, Wv = (lin.weight.detach().numpy().T for lin in (sa.W_Q, sa.W_K, sa.W_V))
    xn = x.numpy()
    ref_out, ref_w = numpy_attention(xn @ Wq, xn @ Wk, xn @ Wv)
    out, w = sa(x)
    np.testing.assert_allclose(out.detach().numpy(), ref_out, atol=1e-6)
    np.testing.assert_allclose(w.detach().numpy(), ref_w, atol=1e-6)
