"""Scaled dot-product attention, self-attention and multi-head attention (Vaswani et al. 2017, §3.2).

In reading order: :func:`scaled_dot_product_attention` (eq. (1)) → :class:`SelfAttention` (one
head, Q, K, V projected from the same tokens) → :class:`MultiHeadAttention` (§3.2.2, ``H`` heads
side by side, interchangeable with :class:`torch.nn.MultiheadAttention` through ``from_torch``).

Two paths, one answer:

* the **manual path** (``need_weights=True``) spells out ``softmax(Q Kᵀ / √d_k) V`` and returns
  the attention weights, which the figures need;
* the **fast path** (``need_weights=False``) calls PyTorch's fused
  :func:`torch.nn.functional.scaled_dot_product_attention`, which never materialises the weights.

Semantics, the same on both paths (the tests pin each one down):

* masks follow PyTorch's SDPA: boolean ``True`` = may attend, a float mask is added to the scores.
  (``torch.nn.MultiheadAttention``'s boolean ``attn_mask`` and ``key_padding_mask`` mean the
  opposite, ``True`` = ignore; convert them with :mod:`engine.masks`' ``from_torch_*`` helpers.)
  A mask of another dtype, or one that does not broadcast to the scores, raises ``ValueError``;
* ``is_causal=True`` applies :func:`engine.masks.causal_mask` (bottom-right aligned when ``S > L``);
* a query whose keys are all masked gets zero weights and a zero output, never NaN
  (``torch.nn.MultiheadAttention`` gives NaN there);
* non-finite inputs follow a rule, not the kernel's order of operations: a NaN or ±inf in a key or
  value a query may not see never reaches it; a query that is not finite, or that may see a key
  that is not, gets NaN weights and output; one that may see a value that is not gets a NaN
  output. Only tensor operations decide this (no ``if`` on values): the fast path never waits for
  the GPU, and ``torch.compile`` sees one graph;
* ``q``, ``k``, ``v`` (and the mask) must share one device, and ``q``, ``k``, ``v`` one dtype:
  both paths raise the same ``ValueError`` otherwise;
* float16/bfloat16 inputs: the manual path computes scores and softmax in float32 and casts back;
  the fast path runs in float32 on the CPU and relies on the fused CUDA kernels' float32 softmax;
* returned weights never include dropout: dropout (training mode only) acts on the weights that
  multiply ``V``. (``torch.nn.MultiheadAttention`` returns the dropped-out weights.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from engine.masks import causal_mask, merge_masks

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _broadcast_shapes(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    """The shape ``shapes`` broadcast to (NumPy's rule), or ``None`` when they do not.

    Written out because :func:`torch.broadcast_shapes` imports sympy on its first call (about a
    second in every fresh worker) and shapes are plain integers here."""
    ndim = max(len(shape) for shape in shapes)
    result = []
    for sizes in zip(*((1,) * (ndim - len(shape)) + tuple(shape) for shape in shapes), strict=True):
        others = {size for size in sizes if size != 1}
        if len(others) > 1:
            return None
        result.append(others.pop() if others else 1)
    return tuple(result)


def _check_mask(mask: torch.Tensor, scores_shape: tuple[int, ...], device: torch.device) -> None:
    """Raise ``ValueError`` unless ``mask`` is bool/float, on ``device``, and broadcasts to
    ``scores_shape`` unambiguously: as ``(L, S)``, or with as many dimensions as the scores. (A
    ``(B, L, S)`` mask against ``(B, H, L, S)`` scores would line ``B`` up with ``H`` and, when
    ``B == H``, mask the wrong sequences without a word.)"""
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise ValueError(f"mask must be bool (True = may attend) or float (additive), got {mask.dtype}")
    if mask.device != device:
        raise ValueError(f"the mask is on {mask.device} and the queries on {device}: put them on one device")
    if mask.dim() not in (2, len(scores_shape)):
        raise ValueError(f"a mask of shape {tuple(mask.shape)} for scores of shape {tuple(scores_shape)} is ambiguous: "
                         f"give it as (L, S) or with all {len(scores_shape)} dimensions (e.g. mask[:, None] for "
                         "one mask per sequence, the same for every head)")
    if _broadcast_shapes(tuple(mask.shape), tuple(scores_shape)) != tuple(scores_shape):
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
        dtype, or ``None`` when ``need_weights=False``. Both paths give one answer for every input:
        a masked key or value never changes the output, whatever it holds (NaN, ±inf); a NaN or inf
        that a query may see reaches its output.

    Raises:
        ValueError: if the last dimensions of ``q`` and ``k`` differ, ``k`` and ``v`` have a
            different number of keys, or the mask has a wrong dtype or shape.
    """
    scale = _check_arguments(q, k, v, mask, scale)
    if not need_weights:
        return _fused_attention(q, k, v, mask, scale=scale, dropout_p=dropout_p, is_causal=is_causal), None
    if is_causal:
        mask = merge_masks(mask, causal_mask(q.shape[-2], k.shape[-2], device=q.device))  # (..., L, S)
    return _manual_attention(q, k, v, mask, scale=scale, dropout_p=dropout_p)


def _check_arguments(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                     scale: float | None) -> float:
    """Check :func:`scaled_dot_product_attention`'s arguments and return the scale to use:
    ``scale`` itself, or ``1 / √d_k`` when it is ``None`` (§3.2.1). Only shapes, dtypes and devices
    are looked at, never the values: no check waits for a GPU.

    Shapes: ``q (..., L, d_k)``, ``k (..., S, d_k)``, ``v (..., S, d_v)``; ``mask`` must broadcast
    to the scores' ``(..., L, S)`` (see :func:`_check_mask`).

    Raises:
        ValueError: if the last dimensions of ``q`` and ``k`` differ, ``k`` and ``v`` have a
            different number of keys, the batch dimensions do not broadcast, the three are not of
            one dtype and on one device, or the mask has a wrong dtype, device or shape.
    """
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k need the same d_k, got {q.shape[-1]} and {k.shape[-1]}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v need the same number of keys S, got {k.shape[-2]} and {v.shape[-2]}")
    if not q.dtype == k.dtype == v.dtype:
        raise ValueError(f"q, k and v need one dtype, got {q.dtype}, {k.dtype} and {v.dtype}")
    if not q.device == k.device == v.device:
        raise ValueError(f"q, k and v need one device, got {q.device}, {k.device} and {v.device}")
    L, S, d_k = q.shape[-2], k.shape[-2], q.shape[-1]
    scale = 1.0 / math.sqrt(d_k) if scale is None else float(scale)
    batch = _broadcast_shapes(tuple(q.shape[:-2]), tuple(k.shape[:-2]), tuple(v.shape[:-2]))
    if batch is None:
        raise ValueError(f"the batch dimensions of q {tuple(q.shape)}, k {tuple(k.shape)} and v {tuple(v.shape)} "
                         "do not broadcast")
    if mask is not None:
        _check_mask(mask, batch + (L, S), q.device)  # scores: (..., L, S)
    return scale


# ---- non-finite inputs, by rule on both paths ----
# A NaN or inf left to the arithmetic goes where the kernel's order of operations sends it: the fused
# kernels multiply before they mask, so a NaN in a masked-out key reaches every query (pytorch#101967),
# and 0 · inf is NaN in a row with no key at all (pytorch#103749). So both paths zero every non-finite
# entry of k and v that some query may not see (with no mask every query sees every key), and mark,
# from the inputs alone, the queries that were not finite or may see a key or value that was not:
# their rows become NaN. Tensor operations only, no `if` on values, so
# nothing waits for a GPU and torch.compile sees one graph. Each step is written for speed on the
# fast path, where it is measured against the fused kernel alone (make bench): a row's badness is
# one matrix-vector product, a key count one matrix product, each a comment says why.


def _bad_rows(*ts: torch.Tensor) -> torch.Tensor:
    """``True`` for each row holding a NaN or ±inf in any of ``ts``: each ``(..., n, d)`` → ``(..., n)``
    (the batch dimensions broadcast).

    ``t @ 0`` is 0 for a finite row and NaN for any other (``inf · 0`` is NaN): one pass of a
    matrix-vector product, where ``isfinite(t).all(-1)`` costs about forty times more on the CPU."""
    poison = sum(t @ t.new_zeros(t.shape[-1]) for t in ts)  # each (..., n, d) @ (d,) -> (..., n)
    return torch.isnan(poison)


def _zero_non_finite(t: torch.Tensor) -> torch.Tensor:
    """``t`` with every NaN and ±inf replaced by 0 (the rows they were in are marked by rule)."""
    return torch.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0)


def _allowed(mask: torch.Tensor | None) -> torch.Tensor | None:
    """``mask`` as booleans, ``True`` = may attend (``None`` for no mask): ``(..., L, S)``."""
    if mask is None:
        return None
    return mask if mask.dtype == torch.bool else ~torch.isneginf(mask)


def _reach(allowed: torch.Tensor, *bad: torch.Tensor) -> list[torch.Tensor]:
    """For each query: whether it may see a key marked in each of ``bad``, then whether it may see
    no key at all.

    Shapes: ``allowed (..., L, S)`` and each ``bad (..., S)`` booleans → each ``(..., L, 1)``.

    Counting is a product with the mask. One ``(L, S)`` mask for every sequence and head is one
    product, ``(L, S) @ (S, n·B·H + 1)`` (the last column counts every key); on the CPU it is an
    int8 product straight on the mask's bytes (``torch._int_mm``): converting an (L, S) mask to
    float first costs 25 times more at L = 4096, where this pass would otherwise dominate the
    fast path's cost over the fused kernel alone."""
    L, S = allowed.shape[-2:]
    if allowed.dim() == 2:
        rows = [b.reshape(-1, S) for b in bad]  # each (B·H, S)
        keys = torch.cat([*rows, allowed.new_ones(1, S)])  # (n·B·H + 1, S)
        if allowed.device.type == "cpu" and hasattr(torch, "_int_mm"):
            counts = torch._int_mm(allowed.contiguous().view(torch.int8), keys.T.to(torch.int8).contiguous())
        else:
            counts = allowed.to(torch.float32) @ keys.T.to(torch.float32)  # (L, n·B·H + 1)
        found, start = [], 0
        for b, r in zip(bad, rows, strict=True):
            found.append((counts[:, start:start + len(r)] > 0).T.reshape(*b.shape[:-1], L, 1))  # -> (..., L, 1)
            start += len(r)
        return [*found, counts[:, -1:] == 0]  # dead: (L, 1)
    weights = allowed.to(torch.float32)  # (..., L, S)
    found = [(weights @ b.to(torch.float32).unsqueeze(-1)) > 0 for b in bad]  # (..., L, S) @ (..., S, 1)
    return [*found, weights.sum(dim=-1, keepdim=True) == 0]


def _sees(bad: torch.Tensor, *, causal: bool = False) -> torch.Tensor:
    """Without a mask, for each query, whether it may see a key marked in ``bad``: every key, or with
    ``causal`` the keys ``j <= i`` of query ``i`` (``L == S``). Shapes: ``bad (..., S)`` →
    ``(..., L, 1)`` (``(..., 1, 1)`` when every query sees every key)."""
    if causal:
        return (bad.cumsum(dim=-1) > 0).unsqueeze(-1)  # any bad key among 0..i: (..., S) -> (..., L, 1)
    return bad.any(dim=-1, keepdim=True).unsqueeze(-1)  # (..., S) -> (..., 1, 1)


def _fill_rows(t: torch.Tensor, rows: torch.Tensor, value: float | torch.Tensor) -> torch.Tensor:
    """``t`` with the rows marked in ``rows`` (``(..., L, 1)``) set to ``value`` (a number, or one per
    row, ``(..., L, 1)``): in place, unless autograd needs ``t`` (writing over a fresh output saves
    a copy and its allocation)."""
    if not isinstance(value, torch.Tensor):
        value = t.new_full((), value)  # filled on t's device: no copy from the host
    if t.requires_grad:
        return torch.where(rows, value, t)
    return torch.where(rows, value, t, out=t)


def _manual_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, *,
                      scale: float, dropout_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The manual path: every step of eq. (1) (§3.2.1), the weights kept for the figures.

    ``mask`` is already checked and already holds the causal mask, if any. float16/bfloat16 inputs
    are computed in float32 and the results cast back.

    Shapes:
        ``q (..., L, d_k)``, ``k (..., S, d_k)``, ``v (..., S, d_v)``, ``mask (..., L, S)`` →
        ``(output (..., L, d_v), weights (..., L, S))``, both in ``q``'s dtype.
    """
    out_dtype = q.dtype
    compute_dtype = torch.float32 if out_dtype in _LOW_PRECISION else out_dtype
    q, k, v = (t.to(compute_dtype) for t in (q, k, v))
    allowed = _allowed(mask)  # (..., L, S)
    bad_k, bad_v = _bad_rows(k), _bad_rows(v)  # (..., S)
    if allowed is None:
        sees_k, sees_v, dead = _sees(bad_k), _sees(bad_v), None
    else:
        sees_k, sees_v, dead = _reach(allowed, bad_k, bad_v)  # (..., L, 1) each
    bad_scores = _bad_rows(q).unsqueeze(-1) | sees_k  # the query or a key it sees: (..., L, 1)
    bad_output = bad_scores | sees_v  # ... or a value it sees: (..., L, 1)
    if allowed is not None:  # a key some query may not see must reach none of them (without a
        k, v = _zero_non_finite(k), _zero_non_finite(v)  # mask, every query sees it: NaN by rule)
    # A query whose scores are NaN by rule is scaled by NaN: its scores, weights and output follow
    # through the arithmetic, and no pass over the (..., L, S) weights is needed to mark them.
    # (1/√d_k is folded into q: L·d_k multiplications instead of L·S.)
    q = q * q.new_full(bad_scores.shape, scale).masked_fill_(bad_scores, float("nan"))  # (..., L, d_k) · (..., L, 1)
    scores = q @ k.transpose(-2, -1)  # (..., L, d_k) @ (..., d_k, S) -> (..., L, S)
    weights = _masked_softmax(scores, mask, allowed, dead)  # (..., L, S), a dead row all zero
    attended = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    output = attended @ v  # (..., L, S) @ (..., S, d_v) -> (..., L, d_v)
    if dead is not None:  # a query that sees no key stays zero, whatever it holds
        bad_output = bad_output & ~dead  # (..., L, 1)
    output = _fill_rows(output, bad_output, float("nan"))  # a value it may see was not finite
    return output.to(out_dtype), weights.to(out_dtype)


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None, allowed: torch.Tensor | None,
                    dead: torch.Tensor | None) -> torch.Tensor:
    """``softmax(scores + mask)`` over the keys (§3.2.1), with zero weights for a query whose keys
    are all masked.

    ``scores`` must be a fresh tensor of the caller's: it is overwritten in place. ``allowed`` is
    ``mask`` as booleans (``True`` = may attend), ``dead`` the queries that may attend to no key
    (:func:`_reach`); both ``None`` with no mask.

    Shapes:
        ``scores (..., L, S)``, ``mask`` and ``allowed`` broadcastable to it → weights ``(..., L, S)``,
        each row summing to 1, or all zero for a query whose keys are all masked.
    """
    if mask is not None:
        # in place: ``scores`` is our own fresh tensor, and matmul's backward does not need it
        if mask.dtype != torch.bool:
            scores += mask.to(scores.dtype)  # (..., L, S)
        scores.masked_fill_(~allowed, float("-inf"))  # (..., L, S)
    if scores.requires_grad:
        weights = torch.softmax(scores, dim=-1)  # (..., L, S), rows sum to 1
    else:  # no autograd to feed: overwrite the scores, one (L, S) buffer instead of two
        weights = torch.softmax(scores, dim=-1, out=scores)  # (..., L, S), rows sum to 1
    if mask is not None:
        # A query with every key masked has a row of -inf scores, and softmax gives 0/0 = NaN
        # there. We define its weights (and hence its output) as zero, before they multiply V (so
        # no NaN reaches a gradient). Which rows are dead is read from the mask itself (often just
        # (L, S)), not from the big scores tensor.
        # (in place unless autograd keeps the softmax's output: no second (..., L, S) buffer)
        weights = _fill_rows(weights, dead, 0.0)  # dead rows: (..., L, 1)
    return weights


def _fused_attention(q, k, v, mask, *, scale: float, dropout_p: float, is_causal: bool) -> torch.Tensor:
    """The fast path: PyTorch's fused kernel, with our rules for non-finite inputs, low precision and
    dead rows applied as tensor operations (no host synchronisation, one graph for torch.compile).

    Shapes: as :func:`_manual_attention`; returns the output ``(..., L, d_v)`` in ``q``'s dtype.
    """
    out_dtype = q.dtype
    L, S = q.shape[-2], k.shape[-2]
    # SDPA's own is_causal aligns the mask top-left; ours aligns it bottom-right (causal_mask), so
    # hand the flag over only where the two agree (L == S and no other mask).
    fused_causal = is_causal and mask is None and L == S
    if is_causal and not fused_causal:
        mask = merge_masks(mask, causal_mask(L, S, device=q.device))  # (..., L, S)
    allowed = _allowed(mask)  # (..., L, S)
    bad_keys = _bad_rows(k, v)  # a key or its value not finite: (..., S)
    if allowed is None:
        sees, dead = _sees(bad_keys, causal=fused_causal), None
    else:
        sees, dead = _reach(allowed, bad_keys)  # (..., L, 1) each
    bad = _bad_rows(q).unsqueeze(-1) | sees  # (..., L, 1)
    if allowed is not None or fused_causal:  # a key some query may not see: it must reach none of them
        k, v = _zero_non_finite(k), _zero_non_finite(v)
    if out_dtype in _LOW_PRECISION and q.device.type == "cpu":
        # The CPU kernels gain nothing from half precision; float32 keeps large scores finite.
        # (CUDA's flash and memory-efficient kernels already keep the softmax in float32.)
        q, k, v = q.float(), k.float(), v.float()
    if mask is not None and mask.dtype != torch.bool:
        mask = mask.to(q.dtype)
    output = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale,
                                            is_causal=fused_causal)  # (..., L, d_v)
    # The rules, on the output the kernel just made (ours: written in place, nothing allocated): a
    # query whose inputs were not finite is NaN, one that sees no key is zero (the kernels differ
    # there, NaN on some back ends: cleared first, so that times 0 gives 0), the rest times one.
    # A multiplication per row costs a tenth of a torch.where on the CPU.
    if dead is not None:  # a row the kernel made not finite (an overflow) stays NaN, unless dead
        bad = bad | _bad_rows(output).unsqueeze(-1)  # (..., L, 1)
    factor = torch.where(bad, float("nan"), 1.0).to(output.dtype)  # (..., L, 1)
    if dead is not None:
        factor = torch.where(dead, 0.0, factor)  # (..., L, 1)
        output = torch.nan_to_num(output) if output.requires_grad else output.nan_to_num_()
    output = output * factor if output.requires_grad else output.mul_(factor)  # (..., L, d_v)
    if dead is not None:  # a negative number times 0 is -0.0, printed "-0.00": make it 0.0
        output = output + 0.0 if output.requires_grad else output.add_(0.0)
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


class MultiHeadAttention(nn.Module):
    """Multi-head attention (Vaswani et al. 2017, §3.2.2).

    ``MultiHead(Q, K, V) = Concat(head_1, …, head_H) W_O`` with
    ``head_h = Attention(Q W_Q^h, K W_K^h, V W_V^h)``: ``H`` heads of width ``d_k = d_model / H``,
    each free to attend to something else. The ``H`` per-head projections are stored as one
    ``d_model → d_model`` linear layer each for Q, K and V, whose output is split into heads.

    Args:
        d_model: width of the queries and of the output (``embed_dim`` in torch).
        num_heads: number of heads ``H``; must divide ``d_model``.
        bias: whether the four projections have a bias (torch's default: yes).
        dropout: dropout probability on the attention weights that multiply ``V``, in training
            mode only; the returned weights never include it.
        kdim, vdim: widths of the key and value inputs (default ``d_model``), as in torch.
        batch_first: ``True``: inputs and outputs are ``(B, L, d_model)``; ``False``: ``(L, B,
            d_model)``, torch's default layout. Unbatched ``(L, d_model)`` inputs work either way.
        seed: if given, weights are drawn from ``torch.Generator().manual_seed(seed)``.
        generator: a generator to draw the weights from (ignored when ``seed`` is given).

    Shapes (batch-first shown):
        ``forward(query (B, L, d_model), key (B, S, kdim), value (B, S, vdim), mask)`` returns
        ``(output (B, L, d_model), weights)`` with weights ``(B, H, L, S)`` per head,
        ``(B, L, S)`` when ``average_weights=True``, or ``None`` when ``need_weights=False``.

    Masks:
        ``mask`` uses this engine's polarity (``True`` = may attend; float = additive) and may have
        shape ``(L, S)``, ``(B, L, S)``, ``(B, 1, L, S)``, ``(B, H, L, S)`` or ``(B, 1, 1, S)`` (a key
        padding mask from :func:`engine.masks.padding_mask`). Torch-style masks convert with
        :func:`engine.masks.from_torch_attn_mask` and :func:`engine.masks.from_torch_key_padding_mask`.

    Raises:
        ValueError: if ``num_heads`` does not divide ``d_model``; from ``forward``, for inputs of the
            wrong rank or width, or a mask of the wrong dtype or shape.
    """

    def __init__(self, d_model: int, num_heads: int, *, bias: bool = True, dropout: float = 0.0,
                 kdim: int | None = None, vdim: int | None = None, batch_first: bool = True,
                 seed: int | None = None, generator: torch.Generator | None = None):
        super().__init__()
        if num_heads < 1 or d_model % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide d_model={d_model}")
        self.d_model, self.num_heads, self.d_k = d_model, num_heads, d_model // num_heads
        self.kdim, self.vdim = kdim or d_model, vdim or d_model
        self.dropout, self.batch_first = float(dropout), batch_first
        if seed is not None:
            generator = torch.Generator().manual_seed(seed)
        self.W_Q = init_linear_(nn.Linear(d_model, d_model, bias=bias), generator)
        self.W_K = init_linear_(nn.Linear(self.kdim, d_model, bias=bias), generator)
        self.W_V = init_linear_(nn.Linear(self.vdim, d_model, bias=bias), generator)
        self.W_O = init_linear_(nn.Linear(d_model, d_model, bias=bias), generator)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, L, d_model)`` → ``(B, H, L, d_k)``: head ``h`` gets columns ``h·d_k … (h+1)·d_k − 1``."""
        B, L, _ = x.shape
        return x.view(B, L, self.num_heads, self.d_k).transpose(1, 2)  # (B, L, H, d_k) -> (B, H, L, d_k)

    @staticmethod
    def merge_heads(x: torch.Tensor) -> torch.Tensor:
        """``(B, H, L, d_k)`` → ``(B, L, H·d_k)``: the "Concat" of §3.2.2."""
        B, H, L, d_k = x.shape
        return x.transpose(1, 2).reshape(B, L, H * d_k)  # (B, L, H, d_k) -> (B, L, d_model)

    def forward(self, query: torch.Tensor, key: torch.Tensor | None = None, value: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, *, is_causal: bool = False, need_weights: bool = True,
                average_weights: bool = False):
        key = query if key is None else key  # self-attention by default
        value = key if value is None else value
        query, key, value, unbatched = self._batch_first(query, key, value)  # (B, L, ·), (B, S, ·)
        mask = self._heads_mask(mask, query.shape[0], query.shape[1], key.shape[1], query.device)
        q = self.split_heads(self.W_Q(query))  # (B, L, d_model) -> (B, H, L, d_k)
        k = self.split_heads(self.W_K(key))  # (B, S, d_model) -> (B, H, S, d_k)
        v = self.split_heads(self.W_V(value))  # (B, S, d_model) -> (B, H, S, d_k)
        heads, weights = scaled_dot_product_attention(
            q, k, v, mask, is_causal=is_causal, need_weights=need_weights,
            dropout_p=self.dropout if self.training else 0.0)  # (B, H, L, d_k), (B, H, L, S)
        output = self.W_O(self.merge_heads(heads))  # (B, L, d_model)
        if weights is not None and average_weights:
            weights = weights.mean(dim=1)  # (B, H, L, S) -> (B, L, S)
        if unbatched:
            return output[0], (None if weights is None else weights[0])
        if not self.batch_first:
            output = output.transpose(0, 1)  # (B, L, d_model) -> (L, B, d_model)
        return output, weights

    def _batch_first(self, query, key, value):
        """Bring the inputs to ``(B, L, ·)``; say whether they came unbatched."""
        if query.dim() not in (2, 3) or key.dim() != query.dim() or value.dim() != query.dim():
            raise ValueError("query, key and value must all be 3-D (batched) or all 2-D (unbatched), got "
                             f"{query.dim()}-D, {key.dim()}-D, {value.dim()}-D")
        for name, t, width in (("query", query, self.d_model), ("key", key, self.kdim), ("value", value, self.vdim)):
            if t.shape[-1] != width:
                raise ValueError(f"{name} must have last dimension {width}, got shape {tuple(t.shape)}")
        if query.dim() == 2:
            return query[None], key[None], value[None], True  # (1, L, ·), (1, S, ·)
        if not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))  # (L, B, ·) -> (B, L, ·)
        return query, key, value, False

    def _heads_mask(self, mask, B: int, L: int, S: int, device: torch.device):
        """Give ``mask`` the four dimensions ``(B or 1, H or 1, L or 1, S)`` of the scores."""
        if mask is None:
            return None
        if not isinstance(mask, torch.Tensor) or mask.dim() not in (2, 3, 4):
            raise ValueError("mask must be a tensor of shape (L, S), (B, L, S) or (B, H, L, S), got "
                             f"{getattr(mask, 'shape', type(mask).__name__)}")
        if mask.dim() == 3:
            if mask.shape[0] not in (1, B):
                raise ValueError(f"a 3-D mask is read as (B, L, S) with B={B}, got shape {tuple(mask.shape)}; "
                                 "for torch's (B*H, L, S) use engine.masks.from_torch_attn_mask(mask, num_heads)")
            mask = mask[:, None]  # (B, L, S) -> (B, 1, L, S)
        _check_mask(mask, (B, self.num_heads, L, S), device)
        return mask

    @classmethod
    def from_torch(cls, m: nn.MultiheadAttention) -> MultiHeadAttention:
        """A copy of ``m``'s weights, layout (``batch_first``), dropout, device, dtype and mode.

        Both of torch's weight layouts are read: the packed ``in_proj_weight`` (``kdim == vdim ==
        embed_dim``) and the separate ``q_proj_weight``/``k_proj_weight``/``v_proj_weight``.

        Raises:
            ValueError: if ``m`` uses ``add_bias_kv`` or ``add_zero_attn``, which we do not model.
        """
        if m.bias_k is not None or m.add_zero_attn:
            raise ValueError("MultiHeadAttention.from_torch: add_bias_kv and add_zero_attn are not supported")
        bias = m.in_proj_bias is not None
        ours = cls(m.embed_dim, m.num_heads, bias=bias, dropout=m.dropout, kdim=m.kdim, vdim=m.vdim,
                   batch_first=m.batch_first)
        if m._qkv_same_embed_dim:
            w_q, w_k, w_v = m.in_proj_weight.chunk(3)  # (3·d_model, d_model) -> 3 × (d_model, d_model)
        else:
            w_q, w_k, w_v = m.q_proj_weight, m.k_proj_weight, m.v_proj_weight
        ref = m.out_proj.weight
        ours.to(device=ref.device, dtype=ref.dtype)
        with torch.no_grad():
            for linear, w in ((ours.W_Q, w_q), (ours.W_K, w_k), (ours.W_V, w_v), (ours.W_O, m.out_proj.weight)):
                linear.weight.copy_(w)
            if bias:
                for linear, b in zip((ours.W_Q, ours.W_K, ours.W_V), m.in_proj_bias.chunk(3), strict=True):
                    linear.bias.copy_(b)
                ours.W_O.bias.copy_(m.out_proj.bias)
        return ours.train(m.training)
