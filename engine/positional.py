"""Positional encodings: telling an order-blind attention layer where each token stands.

Attention is permutation-equivariant (slide "Problema clave: el orden"), so position is added to
the token embeddings, ``X = E + P`` (slide "Positional Encoding").
"""

from __future__ import annotations

import math

import torch


def sinusoidal_encoding(
    num_positions: int,
    d_model: int,
    base: float = 10000.0,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The fixed sinusoidal positional encoding of Vaswani et al. 2017, §3.5.

    ``P[pos, 2i]   = sin(pos / base^(2i / d_model))``
    ``P[pos, 2i+1] = cos(pos / base^(2i / d_model))``

    Even dimensions hold sines and odd dimensions cosines; the pair ``(2i, 2i+1)`` shares one
    frequency. An odd ``d_model`` is allowed: its last (even) dimension is a sine with no partner.

    Args:
        num_positions: number of positions ``pos = 0 .. num_positions-1`` (>= 1).
        d_model: width of the encoding (>= 1).
        base: the wavelength base (10000 in the paper); wavelengths run from ``2π`` to ``base·2π``.
        dtype: floating dtype of the result (computed in float64, then cast).
        device: where to put the result.

    Returns:
        Tensor of shape ``(num_positions, d_model)`` with values in ``[-1, 1]``.

    Raises:
        ValueError: if ``num_positions`` or ``d_model`` is below 1, or ``base`` is not > 0.
    """
    if num_positions < 1 or d_model < 1:
        raise ValueError(f"num_positions and d_model must be >= 1, got {num_positions} and {d_model}")
    if not base > 0:
        raise ValueError(f"base must be > 0, got {base}")
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]  # (P, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (ceil(d_model/2),)
    inv_freq = torch.exp(-math.log(base) * two_i / d_model)  # 1 / base^(2i/d_model)
    angle = position * inv_freq  # (P, ceil(d_model/2))
    pe = torch.empty(num_positions, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return pe.to(dtype=dtype, device=device)
