"""From symbols to vectors: the token embedding (slide "Tokens y embeddings": token → R^d)."""

from __future__ import annotations

import math

import torch
from torch import nn


class TokenEmbedding(nn.Module):
    """A learned lookup table ``id → R^d_model``, scaled by ``√d_model`` (Vaswani et al. 2017, §3.4).

    The table is initialised ``N(0, 1/d_model)`` so that, after the ``√d_model`` scale, each
    coordinate has unit variance — the same scale as the sinusoidal positional encoding it is
    added to.

    Args:
        vocab_size: number of ids.
        d_model: embedding width.
        seed: if given, the table is drawn from ``torch.Generator().manual_seed(seed)``.

    Shapes:
        ``forward(ids)``: ``(..., L)`` ``torch.long`` → ``(..., L, d_model)`` float32.
    """

    def __init__(self, vocab_size: int, d_model: int, *, seed: int | None = None):
        super().__init__()
        self.d_model = d_model
        self.table = nn.Embedding(vocab_size, d_model)
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        nn.init.normal_(self.table.weight, std=d_model**-0.5, generator=generator)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table(ids) * math.sqrt(self.d_model)  # (..., L, d_model)
