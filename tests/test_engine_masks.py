"""Masks: shapes, polarity (True = may attend) and the conversions from torch's opposite polarity."""

import pytest
import torch

from engine.masks import (
    causal_mask,
    from_torch_attn_mask,
    from_torch_key_padding_mask,
    merge_masks,
    padding_mask,
    to_additive,
)


def test_causal_mask_square_and_cache_aligned():
    assert causal_mask(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    # 2 new queries after 2 cached positions: they are positions 2 and 3
    assert causal_mask(2, 4).tolist() == [[True, True, True, False], [True, True, True, True]]
    with pytest.raises(ValueError):
        causal_mask(0)


def test_padding_mask_marks_real_tokens():
    mask = padding_mask([3, 1], S=4)
    assert mask.shape == (2, 1, 1, 4)
    assert mask[:, 0, 0].tolist() == [[True, True, True, False], [True, False, False, False]]
    with pytest.raises(ValueError):
        padding_mask([5], S=4)


def test_torch_key_padding_polarity_is_inverted():
    torch_kpm = torch.tensor([[False, False, True]])  # torch: True = padding, ignore
    assert from_torch_key_padding_mask(torch_kpm)[0, 0, 0].tolist() == [True, True, False]
    float_kpm = torch.tensor([[0.0, -1.0, float("-inf")]])
    assert torch.equal(from_torch_key_padding_mask(float_kpm)[0, 0, 0], float_kpm[0])
    with pytest.raises(ValueError, match=r"\(B, S\)"):
        from_torch_key_padding_mask(torch.zeros(3, dtype=torch.bool))


def test_torch_attn_mask_polarity_and_3d_layout():
    future = torch.ones(3, 3, dtype=torch.bool).triu(1)  # torch: True = not allowed
    assert torch.equal(from_torch_attn_mask(future), causal_mask(3))
    per_head = torch.zeros(2 * 4, 3, 5, dtype=torch.bool)  # (B*H, L, S)
    per_head[5] = True  # batch 1, head 1
    ours = from_torch_attn_mask(per_head, num_heads=4)
    assert ours.shape == (2, 4, 3, 5) and not ours[1, 1].any() and ours[0].all()
    with pytest.raises(ValueError, match="num_heads"):
        from_torch_attn_mask(per_head)


def test_merge_masks():
    a = torch.tensor([[True, False, True]])
    b = torch.tensor([[True], [False]])
    assert merge_masks(a, b).tolist() == [[True, False, True], [False, False, False]]
    assert merge_masks(None, b) is b and merge_masks(a, None) is a
    f = torch.tensor([[0.5, 1.0, -2.0]])
    got = merge_masks(f, b)  # float + bool -> float, -inf where the bool mask forbids
    assert got.dtype == torch.float32
    assert got.tolist() == [[0.5, 1.0, -2.0], [float("-inf")] * 3]
    assert to_additive(a).tolist() == [[0.0, float("-inf"), 0.0]]
