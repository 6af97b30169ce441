"""Attention masks.

Polarity follows :func:`torch.nn.functional.scaled_dot_product_attention`: in a **boolean** mask
``True`` means "this query may attend to this key"; a **float** mask is *added* to the scores
(``0`` keeps a key, ``-inf`` removes it).
"""

from __future__ import annotations

import torch


def causal_mask(L: int, S: int | None = None, *, device: torch.device | str | None = None) -> torch.Tensor:
    """Boolean causal (look-ahead) mask: query ``i`` may attend to keys ``0..i``.

    Vaswani et al. 2017, §3.2.3: in the decoder, "we need to prevent leftward information flow".

    Args:
        L: number of queries.
        S: number of keys (defaults to ``L``). With ``S > L`` the queries are the *last* ``L``
            positions, as when decoding with a cache: query ``i`` sees keys ``0..i + S - L``.
        device: where to build the mask.

    Returns:
        ``torch.bool`` tensor of shape ``(L, S)``, lower-triangular, ``True`` = may attend.

    Raises:
        ValueError: if ``L`` or ``S`` is not a positive integer.
    """
    S = L if S is None else S
    if L < 1 or S < 1:
        raise ValueError(f"causal_mask needs positive lengths, got L={L}, S={S}")
    return torch.ones(L, S, dtype=torch.bool, device=device).tril(diagonal=S - L)  # (L, S)


def padding_mask(lengths, S: int | None = None, *, device: torch.device | str | None = None) -> torch.Tensor:
    """Key-padding mask from sequence lengths: key ``j`` of sequence ``b`` is real iff ``j < lengths[b]``.

    Args:
        lengths: sequence of ``B`` non-negative ints (or a 1-D integer tensor).
        S: padded length (defaults to ``max(lengths)``).
        device: where to build the mask.

    Returns:
        ``torch.bool`` tensor of shape ``(B, 1, 1, S)`` – ready to broadcast against scores of shape
        ``(B, H, L, S)`` – with ``True`` = a real token that may be attended to.

    Raises:
        ValueError: if a length is negative or larger than ``S``.
    """
    lengths = torch.as_tensor(lengths, device=device).long()  # (B,)
    if lengths.dim() != 1:
        raise ValueError(f"lengths must be 1-D, got shape {tuple(lengths.shape)}")
    S = int(lengths.max()) if S is None else S
    if (lengths < 0).any() or (lengths > S).any():
        raise ValueError(f"every length must lie in [0, {S}], got {lengths.tolist()}")
    positions = torch.arange(S, device=lengths.device)  # (S,)
    return (positions[None, :] < lengths[:, None])[:, None, None, :]  # (B, 1, 1, S)


def merge_masks(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    """Combine two masks of our polarity: a key is allowed only if both allow it.

    Two boolean masks are intersected (``a & b``); if either is a float (additive) mask the result
    is a float mask, a boolean mask contributing ``-inf`` where it is ``False``. ``None`` stands
    for "no mask". Shapes broadcast.
    """
    if a is None or b is None:
        return b if a is None else a
    if a.dtype == torch.bool and b.dtype == torch.bool:
        return a & b
    dtype = a.dtype if a.is_floating_point() else b.dtype
    return to_additive(a, dtype) + to_additive(b, dtype)


def to_additive(mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A boolean mask (``True`` = may attend) as a float mask: ``0`` where allowed, ``-inf`` elsewhere.

    A float mask is only cast to ``dtype``.
    """
    if mask.dtype != torch.bool:
        return mask.to(dtype)
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, float("-inf"))


def from_torch_attn_mask(attn_mask: torch.Tensor, num_heads: int | None = None) -> torch.Tensor:
    """Convert a :class:`torch.nn.MultiheadAttention` ``attn_mask`` to this engine's polarity.

    ``torch.nn.MultiheadAttention`` reads a **boolean** ``attn_mask`` the other way round from
    SDPA and from this engine: there ``True`` means "may *not* attend". We invert it. A float mask
    is additive in both and is returned unchanged. A 3-D torch mask has shape ``(B·H, L, S)``; give
    ``num_heads`` to reshape it to our ``(B, H, L, S)``.

    Returns:
        ``(L, S)`` or ``(B, H, L, S)`` mask, ``True``/``0`` = may attend.

    Raises:
        ValueError: for a 3-D mask without ``num_heads`` or a shape that does not split.
    """
    mask = ~attn_mask if attn_mask.dtype == torch.bool else attn_mask
    if mask.dim() == 3:
        if num_heads is None or mask.shape[0] % num_heads:
            raise ValueError(f"a 3-D attn_mask of shape {tuple(mask.shape)} is (B*H, L, S); "
                             f"pass num_heads dividing {mask.shape[0]}, got {num_heads}")
        mask = mask.view(-1, num_heads, *mask.shape[1:])  # (B*H, L, S) -> (B, H, L, S)
    return mask


def from_torch_key_padding_mask(key_padding_mask: torch.Tensor) -> torch.Tensor:
    """Convert torch's ``key_padding_mask`` of shape ``(B, S)`` to our ``(B, 1, 1, S)`` mask.

    Mind the polarity: in :class:`torch.nn.MultiheadAttention` and
    :class:`torch.nn.TransformerEncoderLayer` a boolean ``key_padding_mask`` has ``True`` =
    **ignore** this key (it is padding), the opposite of this engine (``True`` = may attend), so a
    boolean mask is inverted. A float ``key_padding_mask`` is additive in both and kept.

    Raises:
        ValueError: if the mask is not 2-D.
    """
    if key_padding_mask.dim() != 2:
        raise ValueError(f"key_padding_mask must have shape (B, S), got {tuple(key_padding_mask.shape)}")
    mask = ~key_padding_mask if key_padding_mask.dtype == torch.bool else key_padding_mask
    return mask[:, None, None, :]  # (B, S) -> (B, 1, 1, S)
