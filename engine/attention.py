"""Scaled dot-product attention and self-attention (Vaswani et al. 2017, §3.2).

Two paths, one answer:

* the **manual path** (:func:`scaled_dot_product_attention` with ``need_weights=True``) spells out
  ``softmax(Q Kᵀ / √d_k) V`` and returns the attention weights, which the figures need;
* the **fast path** (``need_weights=False``) calls PyTorch's fused
  :func:`torch.nn.functional.scaled_dot_product_attention`, which never materialises the weights.

Semantics, the same on both paths:

* masks follow PyTorch's SDPA: boolean ``True`` = may attend, a float mask is added to the scores;
* a query whose keys are all masked gets zero weights and a zero output, never NaN;
* float16/bfloat16 inputs are computed in float32 (scores and softmax), then cast back;
* returned weights never include dropout: dropout acts only on the weights used for the output.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _check_mask(mask: torch.Tensor, scores_shape: tuple[int, ...]) -> None:
    """Raise ``ValueError`` unless ``mask`` is bool/float and broadcasts to ``scores_shape``."""
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise ValueError(f"mask must be bool (True = may attend) or float (additive), got {mask.dtype}")
    try:
        shape = torch.broadcast_shapes(mask.shape, scores_shape)
    except RuntimeError:
        shape = None
    if shape != torch.Size(scores_shape):
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
            f"{tuple(scores_shape)} (..., L, S)"
        )


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    scale: float | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
    need_weights: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V`` — Vaswani et al. 2017, §3.2.1, eq. (1).

    Args:
        q: queries, shape ``(..., L, d_k)``.
        k: keys, shape ``(..., S, d_k)``.
        v: values, shape ``(..., S, d_v)``.
        mask: optional, broadcastable to ``(..., L, S)``. ``torch.bool``: ``True`` = may attend
            (PyTorch SDPA's convention). Floating: added to the scores (``-inf`` removes a key).
        scale: factor applied to ``Q Kᵀ``; defaults to ``1 / √d_k`` (§3.2.1).
        is_causal: also apply :func:`engine.masks.causal_mask` (query ``i`` sees keys ``<= i``).
        dropout_p: dropout probability on the weights that multiply ``V`` (training only; the
            returned weights never include it).
        need_weights: ``True`` takes the manual path and returns the weights; ``False`` takes the
            fused fast path and returns ``None`` for them.

    Returns:
        ``(output, weights)``: output of shape ``(..., L, d_v)`` in ``q``'s dtype; weights of shape
        ``(..., L, S)``, each row summing to 1 (or all zero for a fully masked query), in ``q``'s
        dtype, or ``None`` when ``need_weights=False``.

    Raises:
        ValueError: if the last dimensions of ``q`` and ``k`` differ, ``k`` and ``v`` have a
            different number of keys, or the mask has a wrong dtype or shape.
    """
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k need the same d_k, got {q.shape[-1]} and {k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v need the same number of keys S, got {k.shape[-2]} and {v.shape[-2]}")
    L, S, d_k = q.shape[-2], k.shape[-2], q.shape[-1]
    scale = 1.0 / math.sqrt(d_k) if scale is None else float(scale)
    scores_shape = tuple(torch.broadcast_shapes(q.shape[:-2], k.shape[:-2])) + (L, S)
    if mask is not None:
        _check_mask(mask, scores_shape)
    if is_causal:
        causal = torch.ones(L, S, dtype=torch.bool, device=q.device).tril(diagonal=S - L)  # (L, S)
        mask = causal if mask is None else _combine(mask, causal)

    if not need_weights:
        return _fused_attention(q, k, v, mask, scale=scale, dropout_p=dropout_p), None

    # ---- manual path: every step of eq. (1), the weights kept for the figures ----
    out_dtype = q.dtype
    compute_dtype = torch.float32 if out_dtype in _LOW_PRECISION else out_dtype
    q, k, v = (t.to(compute_dtype) for t in (q, k, v))
    scores = (q * scale) @ k.transpose(-2, -1)  # (..., L, S); scaling q is cheaper than scaling scores
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask.to(compute_dtype)
    weights = torch.softmax(scores, dim=-1)  # (..., L, S)
    if mask is not None:
        # A query with every key masked has a row of -inf scores, and softmax gives 0/0 = NaN there.
        # We define its weights (and hence its output) as zero.
        weights = weights.masked_fill(torch.isneginf(scores).all(dim=-1, keepdim=True), 0.0)
    attended = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    output = attended @ v  # (..., L, S) @ (..., S, d_v) -> (..., L, d_v)
    return output.to(out_dtype), weights.to(out_dtype)


def _combine(mask: torch.Tensor, causal: torch.Tensor) -> torch.Tensor:
    """Intersect a user mask with a boolean causal mask, keeping the user mask's kind."""
    if mask.dtype == torch.bool:
        return mask & causal
    return mask.masked_fill(~causal, float("-inf"))


def _fused_attention(q, k, v, mask, *, scale: float, dropout_p: float) -> torch.Tensor:
    """The fast path: PyTorch's fused kernel, plus our rule for fully masked queries."""
    out_dtype = q.dtype
    if mask is not None and mask.dtype != torch.bool:
        mask = mask.to(q.dtype)
    output = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale)
    if mask is not None:
        # The fused kernels disagree on fully masked rows (NaN on some back ends); make them zero.
        keep = mask.any(dim=-1, keepdim=True) if mask.dtype == torch.bool else ~torch.isneginf(mask).all(-1, keepdim=True)
        output = output.masked_fill(~keep, 0.0).nan_to_num_(0.0) if not keep.all() else output
    return output.to(out_dtype)


def init_linear_(linear: nn.Linear, generator: torch.Generator | None = None) -> nn.Linear:
    """Xavier/Glorot-uniform weights and zero bias, drawn from ``generator`` (deterministic)."""
    nn.init.xavier_uniform_(linear.weight, generator=generator)
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)
    return linear


class SelfAttention(nn.Module):
    """Single-head self-attention: Q, K and V are projections of the same sequence (§3.2).

    ``Q = X W_Q``, ``K = X W_K``, ``V = X W_V``, then :func:`scaled_dot_product_attention`.

    Args:
        d_model: width of the input token vectors.
        d_k: width of queries and keys (defaults to ``d_model``).
        d_v: width of values and of the output (defaults to ``d_k``).
        bias: whether the projections have a bias.
        seed: if given, the projection weights are drawn from ``torch.Generator().manual_seed(seed)``
            so that the same seed gives the same weights on every run and device.

    Shapes:
        ``forward(x, mask=None)`` takes ``x`` of shape ``(B, L, d_model)`` or ``(L, d_model)`` and
        returns ``(output (B, L, d_v), weights (B, L, L))`` (batch dimension as in ``x``).
    """

    def __init__(self, d_model: int, d_k: int | None = None, d_v: int | None = None, *,
                 bias: bool = False, seed: int | None = None):
        super().__init__()
        self.d_model = d_model
        self.d_k = d_k or d_model
        self.d_v = d_v or self.d_k
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        self.W_Q = init_linear_(nn.Linear(d_model, self.d_k, bias=bias), generator)
        self.W_K = init_linear_(nn.Linear(d_model, self.d_k, bias=bias), generator)
        self.W_V = init_linear_(nn.Linear(d_model, self.d_v, bias=bias), generator)

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(q, k, v)`` of shapes ``(..., L, d_k)``, ``(..., L, d_k)``, ``(..., L, d_v)``."""
        return self.W_Q(x), self.W_K(x), self.W_V(x)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, *, is_causal: bool = False):
        q, k, v = self.project(x)  # (..., L, d_k), (..., L, d_k), (..., L, d_v)
        return scaled_dot_product_attention(q, k, v, mask, is_causal=is_causal)
