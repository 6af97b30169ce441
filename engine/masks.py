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
