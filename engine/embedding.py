"""From symbols to vectors: the token embedding (slide "Tokens y embeddings": token → R^d), and
embeddings learned from text with skip-gram ("¿Qué captura un embedding bien entrenado?")."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import torch
from torch import nn


def token_seed(token: str, seed: int = 0) -> int:
    """A 63-bit seed from a token's text and ``seed``: the first 8 bytes of SHA-256 of both, the
    same on every machine and in every Python run."""
    digest = hashlib.sha256(f"{seed}\0{token}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


class TokenEmbedding(nn.Module):
    """A learned lookup table ``id → R^d_model``, scaled by ``√d_model`` (Vaswani et al. 2017, §3.4).

    The table is initialised ``N(0, 1/d_model)`` so that, after the ``√d_model`` scale, each
    coordinate has unit variance — the same scale as the sinusoidal positional encoding it is
    added to.

    Args:
        vocab_size: number of ids.
        d_model: embedding width.
        seed: if given, the table is drawn from ``torch.Generator().manual_seed(seed)``.
        tokens: if given (``vocab_size`` strings, the vocabulary's ``itos``), each row is drawn from
            a generator seeded by the token's *text* and ``seed`` (:func:`token_seed`): one word has
            one vector in every sentence and every deck, on any machine (not Python's salted
            ``hash``). Without it rows follow the order of the ids, so two sentences with the same
            pattern of repeated words would get the same vectors.

    Shapes:
        ``forward(ids)``: ``(..., L)`` ``torch.long`` → ``(..., L, d_model)`` float32.

    Raises:
        ValueError: when ``tokens`` does not have ``vocab_size`` entries.
    """

    def __init__(self, vocab_size: int, d_model: int, *, seed: int | None = None,
                 tokens: Sequence[str] | None = None):
        super().__init__()
        self.d_model = d_model
        self.table = nn.Embedding(vocab_size, d_model)
        if tokens is None:
            generator = None if seed is None else torch.Generator().manual_seed(seed)
            nn.init.normal_(self.table.weight, std=d_model**-0.5, generator=generator)
            return
        if len(tokens) != vocab_size:
            raise ValueError(f"{len(tokens)} tokens for a table of {vocab_size} rows")
        with torch.no_grad():
            for i, token in enumerate(tokens):  # (d_model,) each, N(0, 1/d_model)
                generator = torch.Generator().manual_seed(token_seed(token, seed or 0))
                self.table.weight[i] = torch.randn(d_model, generator=generator) * d_model**-0.5

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table(ids) * math.sqrt(self.d_model)  # (..., L, d_model)


# ---- embeddings learned from text: what a well-trained embedding captures ----


class SkipGram(nn.Module):
    """Skip-gram with negative sampling (Mikolov et al. 2013, "Distributed Representations of Words
    and Phrases", §2.2): a word's vector is trained to predict the words around it.

    Two tables: ``center`` (the embeddings we keep) and ``context``. For a pair (center ``c``,
    context ``o``) seen in the text and ``k`` words ``n_1 … n_k`` drawn at random, the loss is

        −log σ(v_c · u_o) − Σ_i log σ(−v_c · u_{n_i})

    so words that appear in the same contexts end up with similar vectors.

    Shapes:
        ``forward(center (B,), context (B,), negatives (B, k))`` → the mean loss (a scalar).
    """

    def __init__(self, vocab_size: int, d_model: int, *, seed: int | None = None):
        super().__init__()
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        self.center = nn.Parameter(torch.randn(vocab_size, d_model, generator=generator) * 0.1)
        self.context = nn.Parameter(torch.zeros(vocab_size, d_model))

    def forward(self, center: torch.Tensor, context: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
        v = self.center[center]  # (B, d_model)
        positive = (v * self.context[context]).sum(-1)  # (B,)
        negative = torch.einsum("bd,bkd->bk", v, self.context[negatives])  # (B, k)
        return -(torch.nn.functional.logsigmoid(positive) + torch.nn.functional.logsigmoid(-negative).sum(-1)).mean()


def context_pairs(sentences: list[list[int]], window: int) -> torch.Tensor:
    """Every (center, context) pair of ids at most ``window`` positions apart within a sentence,
    shape ``(N, 2)``, ``torch.long``."""
    pairs = [(s[i], s[j]) for s in sentences for i in range(len(s))
             for j in range(max(0, i - window), min(len(s), i + window + 1)) if j != i]
    return torch.tensor(pairs, dtype=torch.long).reshape(-1, 2)


def train_skipgram(sentences: list[list[str]], *, d_model: int = 16, window: int = 2, negatives: int = 5,
                   steps: int = 400, batch_size: int = 256, lr: float = 0.01, seed: int = 0,
                   num_threads: int | None = 1):
    """Learn word vectors from ``sentences`` (lists of tokens) with :class:`SkipGram`.

    Negative words are drawn from the unigram counts raised to 3/4 (§2.2); batches and negatives
    come from one generator seeded by ``seed``, so the same arguments give the same vectors.

    Returns:
        ``(vocab, vectors, losses)``: the :class:`engine.tokens.Vocabulary` (no specials), the
        ``(len(vocab), d_model)`` float32 center table, and the loss of every step.

    Raises:
        ValueError: if the sentences hold no pair of words within ``window`` of each other.
    """
    from engine.optim import Adam
    from engine.tokens import Vocabulary

    vocab = Vocabulary([t for s in sentences for t in s], specials=())
    pairs = context_pairs([[vocab.stoi[t] for t in s] for s in sentences], window)  # (N, 2)
    if not len(pairs):
        raise ValueError("the sentences hold no two words close enough to learn from")
    noise = torch.bincount(pairs[:, 1], minlength=len(vocab)).float() ** 0.75  # (V,)
    generator = torch.Generator().manual_seed(seed)
    model = SkipGram(len(vocab), d_model, seed=seed)
    optimiser = Adam(model.parameters(), lr=lr)
    threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    losses = []
    try:
        for _ in range(steps):
            batch = pairs[torch.randint(len(pairs), (batch_size,), generator=generator)]  # (B, 2)
            drawn = torch.multinomial(noise, batch_size * negatives, replacement=True, generator=generator)
            loss = model(batch[:, 0], batch[:, 1], drawn.view(batch_size, negatives))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
    finally:
        torch.set_num_threads(threads)
    return vocab, model.center.detach().clone(), losses
