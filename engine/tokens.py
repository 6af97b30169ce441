"""From symbols to vectors: tokenization, vocabulary and token embeddings (slide "Tokens y embeddings").

Word-level tokenization is enough for the lecture's sentences; a real model would use sub-words
(BPE), but the steps are the same: text → tokens → ids → vectors in ``R^d_model``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence

import torch
from torch import nn

# A word is a run of letters/digits (any script, accents included); every other visible character
# is a token by itself.
_TOKEN = re.compile(r"\w+|[^\w\s]")

PAD, UNK = "<pad>", "<unk>"


def tokenize(text: str, *, lower: bool = True) -> list[str]:
    """Split ``text`` into word and punctuation tokens (Unicode NFC, lower-cased by default).

    >>> tokenize("El gato se sentó.")
    ['el', 'gato', 'se', 'sentó', '.']
    """
    text = unicodedata.normalize("NFC", text)
    return _TOKEN.findall(text.lower() if lower else text)


class Vocabulary:
    """A bijection between tokens and integer ids, in first-seen order after the specials.

    Id 0 is ``<pad>`` and id 1 is ``<unk>``; unknown tokens encode to ``<unk>``.
    """

    def __init__(self, tokens: Iterable[str] = (), specials: Sequence[str] = (PAD, UNK)):
        self.itos: list[str] = []
        self.stoi: dict[str, int] = {}
        for token in [*specials, *tokens]:
            if token not in self.stoi:
                self.stoi[token] = len(self.itos)
                self.itos.append(token)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: Iterable[str]) -> torch.Tensor:
        """Token strings → ``torch.long`` tensor of ids, shape ``(L,)``."""
        unk = self.stoi.get(UNK)
        ids = [self.stoi.get(t, unk) for t in tokens]
        if None in ids:
            raise KeyError("token not in vocabulary and the vocabulary has no <unk>")
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids → token strings."""
        return [self.itos[int(i)] for i in ids]


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
