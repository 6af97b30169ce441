"""A sentence through one seeded self-attention head: what the sentence kinds (``.attention``,
``.permutation``) compute, written once.

``X = E + P`` (embedding, plus the sinusoidal encoding when asked; slide "Positional Encoding"),
``Q, K, V = X W_Q, X W_K, X W_V``, ``A = softmax(QKᵀ/√d_k)``, ``O = AV`` (Vaswani et al. 2017,
§3.2.1). The weights are drawn on the CPU from the seed, then moved, so every device starts from
the same numbers. Not a kind (its name starts with ``_``): kinds import it inside ``compute``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from engine.attention import SelfAttention, scaled_dot_product_attention
from engine.masks import causal_mask
from engine.positional import sinusoidal_encoding
from engine.tokens import TokenEmbedding, Vocabulary


class Head(NamedTuple):
    """The embedding table and the one attention head, drawn from a seed."""

    embedding: TokenEmbedding
    attention: SelfAttention


class SelfAttentionSteps(NamedTuple):
    """Every intermediate of one self-attention pass over ``L`` tokens."""

    x: torch.Tensor  # (L, d_model): embeddings, plus positions when asked
    q: torch.Tensor  # (L, d_k)
    k: torch.Tensor  # (L, d_k)
    v: torch.Tensor  # (L, d_v)
    mask: torch.Tensor | None  # (L, L) bool, True = may attend; None without a causal mask
    scale: float  # 1/√d_k
    output: torch.Tensor  # (L, d_v)
    weights: torch.Tensor  # (L, L), rows sum to 1


def make_head(vocab: Vocabulary, *, seed: int, d_model: int, d_k: int, device: torch.device) -> Head:
    """The embedding (seed ``seed``) and the head's ``W_Q, W_K, W_V`` (seed ``seed + 1``), on ``device``."""
    embedding = TokenEmbedding(len(vocab), d_model, seed=seed).to(device)
    attention = SelfAttention(d_model, d_k, seed=seed + 1).to(device)
    return Head(embedding, attention)


@torch.no_grad()
def self_attention(tokens: list[str], vocab: Vocabulary, head: Head, *, positional: bool,
                   causal: bool) -> SelfAttentionSteps:
    """``X = E (+ P)`` → ``Q, K, V`` → ``softmax(QKᵀ/√d_k) V`` for ``tokens``; every intermediate."""
    device = head.embedding.table.weight.device
    ids = vocab.encode(tokens).to(device)  # (L,)
    x = head.embedding(ids)  # (L, d_model)
    if positional:
        x = x + sinusoidal_encoding(len(tokens), head.embedding.d_model, device=device)  # X = E + P
    q, k, v = head.attention.project(x)  # (L, d_k), (L, d_k), (L, d_v)
    mask = causal_mask(len(tokens), device=device) if causal else None  # (L, L)
    scale = 1.0 / math.sqrt(q.shape[-1])
    output, weights = scaled_dot_product_attention(q, k, v, mask, scale=scale)  # (L, d_v), (L, L)
    return SelfAttentionSteps(x, q, k, v, mask, scale, output, weights)
