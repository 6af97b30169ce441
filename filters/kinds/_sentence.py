"""What the sentence kinds share: their options, and one seeded self-attention pass over a sentence.

``X = E + P`` (embedding, plus the sinusoidal encoding when asked; slide "Positional Encoding"),
``Q, K, V = X W_Q, X W_K, X W_V``, ``A = softmax(QKᵀ/√d_k)``, ``O = AV`` (Vaswani et al. 2017,
§3.2.1). The weights are drawn on the CPU from the seed, then moved, so every device starts from
the same numbers. Not a kind (its name starts with ``_``); torch is imported inside the functions,
so that kinds can inherit :class:`SentenceOptions` without importing it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from engine.tokens import tokenize
from filters.blocks.options import Options, option
from filters.blocks.parsers import as_int, as_seed, as_str
from filters.errors import BlockError

MAX_TOKEN_CHARS = 24  # the longest word a figure labels ("desafortunadamente" is 18)


@dataclass(frozen=True)
class SentenceOptions(Options):
    """A sentence run through seeded attention. ``max_tokens``: how many fit the kind's figure."""

    body_key: ClassVar[str | None] = "sentence"
    max_tokens: ClassVar[int] = 40
    sentence: str = option("", as_str, help="the sentence: the block's body (or sentence=\"…\"); words and "
                                             "punctuation marks are tokens")
    seed: int = option(0, as_seed, help="seed of the embedding and of W_Q, W_K, W_V (a word's vector depends on its text "
                       "and the seed only: the same word has the same vector in every sentence)")
    d_model: int = option(16, as_int(1, 1024), help="width of the token vectors")

    def validate(self) -> None:
        super().validate()
        tokens = tokenize(self.sentence)
        if not tokens:
            raise BlockError("the block has no sentence: write it as the block's body (or as sentence=\"…\")",
                             key="sentence")
        longest = max(tokens, key=len)
        if len(longest) > MAX_TOKEN_CHARS:
            raise BlockError(f"the token {longest[:20]!r}… has {len(longest)} characters: a label of more than "
                             f"{MAX_TOKEN_CHARS} cannot be read on a slide (separate the words)", key="sentence")
        if len(tokens) > self.max_tokens:
            raise BlockError(f"at most {self.max_tokens} tokens fit this figure on a slide, and the sentence has "
                             f"{len(tokens)} (every word and every punctuation mark is a token)", key="sentence")

    def caption_fields(self) -> dict:
        """A long sentence is shortened in a default caption: its first words, then "…"."""
        words = self.sentence.split()
        short = self.sentence if len(words) <= 10 else " ".join(words[:8]) + " …"
        return {**super().caption_fields(), "sentence": short}

    @property
    def tokens(self) -> list[str]:
        """The sentence's tokens (:func:`engine.tokens.tokenize`)."""
        return tokenize(self.sentence)


class Head(NamedTuple):
    """The embedding table and the one attention head, drawn from a seed."""

    embedding: object  # engine.embedding.TokenEmbedding
    attention: object  # engine.attention.SelfAttention


class SelfAttentionSteps(NamedTuple):
    """Every intermediate of one self-attention pass over ``L`` tokens (torch tensors)."""

    x: object  # (L, d_model): embeddings, plus positions when asked
    q: object  # (L, d_k)
    k: object  # (L, d_k)
    v: object  # (L, d_v)
    mask: object  # (L, L) bool, True = may attend; None without a causal mask
    scale: float  # 1/√d_k
    output: object  # (L, d_v)
    weights: object  # (L, L), rows sum to 1


def make_head(vocab, *, seed: int, d_model: int, d_k: int, device) -> Head:
    """The embedding (seed ``seed``) and the head's ``W_Q, W_K, W_V`` (seed ``seed + 1``) for the
    tokens of ``vocab`` (an :class:`engine.tokens.Vocabulary`), on ``device``."""
    from engine.attention import SelfAttention
    from engine.embedding import TokenEmbedding

    embedding = TokenEmbedding(len(vocab), d_model, seed=seed, tokens=vocab.itos).to(device)
    attention = SelfAttention(d_model, d_k, seed=seed + 1).to(device)
    return Head(embedding, attention)


def embed(tokens: list[str], vocab, embedding, *, positional: bool):
    """``X = E`` or ``X = E + P`` for ``tokens``: shape ``(L, d_model)``."""
    import torch

    from engine.positional import sinusoidal_encoding

    device = embedding.table.weight.device
    with torch.no_grad():
        x = embedding(vocab.encode(tokens).to(device))  # (L, d_model)
        if positional:
            x = x + sinusoidal_encoding(len(tokens), embedding.d_model, device=device)  # X = E + P
    return x


def self_attention(tokens: list[str], vocab, head: Head, *, positional: bool, causal: bool) -> SelfAttentionSteps:
    """``X = E (+ P)`` → ``Q, K, V`` → ``softmax(QKᵀ/√d_k) V`` for ``tokens``; every intermediate."""
    import torch

    from engine.attention import scaled_dot_product_attention
    from engine.masks import causal_mask

    x = embed(tokens, vocab, head.embedding, positional=positional)  # (L, d_model)
    with torch.no_grad():
        q, k, v = head.attention.project(x)  # (L, d_k), (L, d_k), (L, d_v)
        mask = causal_mask(len(tokens), device=x.device) if causal else None  # (L, L)
        scale = 1.0 / math.sqrt(q.shape[-1])
        output, weights = scaled_dot_product_attention(q, k, v, mask, scale=scale)  # (L, d_v), (L, L)
    return SelfAttentionSteps(x, q, k, v, mask, scale, output, weights)
