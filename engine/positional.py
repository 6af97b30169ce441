"""Positional encodings: telling an order-blind attention layer where each token stands.

Attention is permutation-equivariant (slide "Problema clave: el orden"), so position is added to
the token embeddings, ``X = E + P`` (slide "Positional Encoding"), or mixed into the scores.

In reading order:

* :func:`sinusoidal_encoding`: fixed sines and cosines added to the embeddings (Vaswani et al. 2017);
* :class:`LearnedPositionalEmbedding`: a learned table added to the embeddings (BERT, GPT-2);
* :func:`rotary_embedding` (RoPE): rotates queries and keys so that their dot product depends on
  the *relative* position (Su et al. 2021);
* :func:`alibi_slopes`, :func:`alibi_bias` (ALiBi): no embedding at all, a distance penalty added to
  the scores (Press et al. 2021).
"""

from __future__ import annotations

import math

import torch
from torch import nn


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


class LearnedPositionalEmbedding(nn.Module):
    """A learned table ``position → R^d_model`` (Vaswani et al. 2017, §3.5, "learned positional
    embeddings"; the choice of BERT and GPT-2).

    Unlike :func:`sinusoidal_encoding` it knows nothing beyond ``max_len``: asking for a position
    ``>= max_len`` raises.

    Args:
        max_len: number of positions the table holds (>= 1).
        d_model: embedding width (>= 1).
        std: standard deviation of the initial ``N(0, std²)`` entries (GPT-2 uses 0.02).
        seed: if given, the table is drawn from ``torch.Generator().manual_seed(seed)``.

    Shapes:
        ``forward(positions)`` takes an ``int`` ``L`` (meaning positions ``0..L-1``) or a
        ``torch.long`` tensor of positions of any shape ``(...)`` and returns ``(L, d_model)`` or
        ``(..., d_model)``.

    Raises:
        ValueError: from the constructor for a non-positive size; from ``forward`` for a position
            outside ``[0, max_len)``.
    """

    def __init__(self, max_len: int, d_model: int, *, std: float = 0.02, seed: int | None = None):
        super().__init__()
        if max_len < 1 or d_model < 1:
            raise ValueError(f"max_len and d_model must be >= 1, got {max_len} and {d_model}")
        self.max_len, self.d_model = max_len, d_model
        self.table = nn.Embedding(max_len, d_model)
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        nn.init.normal_(self.table.weight, std=std, generator=generator)

    def forward(self, positions: int | torch.Tensor) -> torch.Tensor:
        if isinstance(positions, int):  # checked as a number: nothing to read back from the device
            if not 0 <= positions <= self.max_len:
                raise ValueError(f"positions must lie in [0, {self.max_len}), got [0, {positions - 1}]")
            return self.table(torch.arange(positions, device=self.table.weight.device))  # (L, d_model)
        if positions.device.type == "cpu" and positions.numel() and \
                (int(positions.min()) < 0 or int(positions.max()) >= self.max_len):
            raise ValueError(f"positions must lie in [0, {self.max_len}), got "
                             f"[{int(positions.min())}, {int(positions.max())}]")
        # on a GPU the check would wait for the device: the embedding's own bounds check stands for it
        return self.table(positions)  # (..., d_model)


def rotary_embedding(
    x: torch.Tensor,
    positions: torch.Tensor | None = None,
    base: float = 10000.0,
    *,
    interleaved: bool = True,
) -> torch.Tensor:
    """Rotary position embedding, RoPE (Su et al. 2021, RoFormer §3.4.2, eq. (34)).

    Each pair of coordinates of a query or key at position ``m`` is rotated by the angle
    ``m·θ_i`` with ``θ_i = base^(-2i/d)``, ``i = 0 .. d/2-1``::

        x'_a = x_a cos(mθ_i) − x_b sin(mθ_i)
        x'_b = x_a sin(mθ_i) + x_b cos(mθ_i)

    Because rotations compose, ``⟨R_m q, R_n k⟩ = ⟨q, R_{n−m} k⟩``: the score between a rotated
    query and a rotated key depends on the positions only through ``n − m`` (§3.4.1).

    **Pairing convention.** With ``interleaved=True`` (the default, as in the paper's eq. (34))
    the pairs are ``(a, b) = (2i, 2i+1)``. With ``interleaved=False`` they are
    ``(i, i + d/2)``, the "half-split" layout of GPT-NeoX and LLaMA. The two give the same scores
    up to a fixed permutation of the coordinates, but weights trained with one layout do not work
    with the other.

    Args:
        x: queries or keys, shape ``(..., L, d)`` with ``d`` even; any floating dtype.
        positions: position of each row: ``(L,)``, or ``(..., L)`` with all of ``x``'s leading
            dimensions (size 1 where shared); defaults to ``0..L-1``.
        base: the wavelength base (10000 in the paper).
        interleaved: the pairing convention, see above.

    Returns:
        Tensor of ``x``'s shape and dtype (angles computed in float32, or float64 for float64 ``x``).

    Raises:
        ValueError: if the last dimension of ``x`` is odd, or ``positions`` could be read two ways.
    """
    d = x.shape[-1]
    if d % 2:
        raise ValueError(f"rotary_embedding needs an even last dimension, got {d}")
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    positions = _rope_positions(x, positions)  # (L,) or (..., L)
    theta = base ** (-torch.arange(0, d, 2, device=x.device, dtype=work) / d)  # (d/2,)
    angle = positions.to(work)[..., None] * theta  # (..., L, d/2)
    cos, sin = angle.cos(), angle.sin()
    return _rotate_pairs(x.to(work), cos, sin, interleaved=interleaved).to(x.dtype)  # (..., L, d)


def _rope_positions(x: torch.Tensor, positions: torch.Tensor | None) -> torch.Tensor:
    """:func:`rotary_embedding`'s positions, checked: ``0..L-1`` when ``None``.

    Shapes:
        ``x (..., L, d)``; ``positions`` ``(L,)`` or ``(..., L)`` with all of ``x``'s leading
        dimensions (size 1 where shared) → the same positions, or ``(L,)`` for the default.

    Raises:
        ValueError: if ``positions`` could be read two ways.
    """
    L = x.shape[-2]
    if positions is None:
        return torch.arange(L, device=x.device)  # (L,)
    if positions.shape[-1:] != (L,) or positions.dim() not in (1, x.dim() - 1):
        # (B, L) positions against (B, H, L, d) queries would line B up with H: say which is meant
        raise ValueError(f"positions of shape {tuple(positions.shape)} for x of shape {tuple(x.shape)}: give (L,) = "
                         f"({L},) or one per row with all of x's leading dimensions, {tuple(x.shape[:-1])} "
                         "(size 1 where shared, e.g. positions[:, None] for every head)")
    return positions


def _rotate_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, *, interleaved: bool) -> torch.Tensor:
    """Rotate each coordinate pair ``(a, b)`` of ``x`` by its angle (RoFormer §3.4.2, eq. (34)):
    ``(a cos − b sin, a sin + b cos)``. The pairs are ``(2i, 2i+1)`` with ``interleaved=True``,
    ``(i, i + d/2)`` otherwise (see :func:`rotary_embedding`).

    Shapes:
        ``x (..., L, d)``, ``cos`` and ``sin`` ``(..., L, d/2)`` (broadcastable) → ``(..., L, d)``,
        in ``x``'s dtype.
    """
    d = x.shape[-1]
    if interleaved:
        a, b = x[..., 0::2], x[..., 1::2]  # (..., L, d/2) each
    else:
        a, b = x[..., : d // 2], x[..., d // 2 :]  # (..., L, d/2) each
    ra, rb = a * cos - b * sin, a * sin + b * cos  # (..., L, d/2) each
    if interleaved:
        return torch.stack((ra, rb), dim=-1).flatten(-2)  # (..., L, d/2, 2) -> (..., L, d)
    return torch.cat((ra, rb), dim=-1)  # (..., L, d)


def alibi_slopes(num_heads: int) -> torch.Tensor:
    """The head-specific slopes ``m_h`` of ALiBi (Press et al. 2021, §3).

    For ``H`` a power of two the slopes are the geometric sequence that starts at ``2^(-8/H)``
    with that same ratio: for 8 heads ``1/2, 1/4, …, 1/256``. For other ``H`` the authors'
    reference code takes the ``2^⌊log2 H⌋`` slopes of the nearest lower power of two and adds
    every other slope of the next power of two (``2·2^⌊log2 H⌋`` heads), i.e. the ones that fall in
    between, until there are ``H``.

    Args:
        num_heads: number of heads ``H`` (>= 1).

    Returns:
        float32 tensor of shape ``(H,)``, all in ``(0, 1)``.

    Raises:
        ValueError: if ``num_heads`` is below 1.
    """
    if num_heads < 1:
        raise ValueError(f"num_heads must be >= 1, got {num_heads}")

    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (h + 1) for h in range(n)]

    lower = 2 ** int(math.floor(math.log2(num_heads)))
    slopes = power_of_two(lower)
    if lower != num_heads:
        slopes += power_of_two(2 * lower)[0::2][: num_heads - lower]
    return torch.tensor(slopes, dtype=torch.float32)


def alibi_bias(
    num_heads: int,
    L: int,
    S: int | None = None,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """ALiBi's additive attention bias ``−m_h · (distance from query to key)`` (Press et al. 2021, §3).

    ``bias[h, i, j] = −m_h · |(i + S − L) − j|``: query ``i`` stands at absolute position
    ``i + S − L`` (the last ``L`` of ``S`` positions, as in :func:`engine.masks.causal_mask`). For
    keys at or before the query this is the paper's ``m · [−(i−1), …, −1, 0]``; for keys after it
    (only reachable without a causal mask) we use the same penalty on the absolute distance, a
    common bidirectional extension that is not in the paper.

    Args:
        num_heads: number of heads ``H``; slopes from :func:`alibi_slopes`.
        L: number of queries. S: number of keys (defaults to ``L``; must be ``>= L``).
        device: where to build the bias.

    Returns:
        float32 tensor of shape ``(H, L, S)``, to add to the scores as a float mask (it broadcasts
        against ``(B, H, L, S)``). Combine it with a causal mask for a decoder.

    Raises:
        ValueError: if a size is not positive or ``S < L``.
    """
    S = L if S is None else S
    if L < 1 or S < L:
        raise ValueError(f"alibi_bias needs 1 <= L <= S, got L={L}, S={S}")
    query_pos = torch.arange(S - L, S, device=device)[:, None]  # (L, 1)
    key_pos = torch.arange(S, device=device)[None, :]  # (1, S)
    distance = (query_pos - key_pos).abs().float()  # (L, S)
    return -alibi_slopes(num_heads).to(device)[:, None, None] * distance  # (H, L, S)
