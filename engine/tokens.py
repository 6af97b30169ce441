"""From text to symbols: tokenization and the vocabulary (slide "Tokens y embeddings").

Word-level tokenization is enough for the lecture's sentences; a real model would use sub-words
(BPE), but the steps are the same: text → tokens → ids → vectors in ``R^d_model`` (the last step
is :mod:`engine.embedding`). Tokenizing imports no torch, so a slide's options can be checked
against its number of tokens without paying for it.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Iterable, Sequence


def _class(char: str) -> str:
    """``"word"`` for a letter or digit of any script and for a combining mark (Unicode category M:
    the dot of "i̇" after lower-casing "İ", Guaraní's "g̃", Devanagari's vowel signs), which stays in
    its word; ``"gap"`` for white space and invisible format characters (a byte-order mark, a
    zero-width space); ``"sign"`` for anything else. (Python's ``re`` has no Unicode categories and
    ``\\w`` leaves marks out; a loop over categories needs no third-party module, which the GPU
    check's bare environment would lack.)"""
    category = unicodedata.category(char)
    if char.isalnum() or char == "_" or category[0] == "M":
        return "word"
    return "gap" if char.isspace() or category == "Cf" else "sign"


PAD, UNK = "<pad>", "<unk>"


def tokenize(text: str, *, lower: bool = True) -> list[str]:
    """Split ``text`` into word and punctuation tokens (Unicode NFC, lower-cased by default).

    >>> tokenize("El gato se sentó.")
    ['el', 'gato', 'se', 'sentó', '.']
    """
    text = unicodedata.normalize("NFC", text)
    tokens = []
    for kind, chars in itertools.groupby(text.lower() if lower else text, key=_class):
        if kind == "word":
            tokens.append("".join(chars))
        elif kind == "sign":
            tokens.extend(chars)  # every sign is a token by itself
    return tokens


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

    def encode(self, tokens: Iterable[str]):
        """Token strings → ``torch.long`` tensor of ids, shape ``(L,)``.

        Raises:
            KeyError: for an unknown token when the vocabulary has no ``<unk>``.
        """
        import torch

        unk = self.stoi.get(UNK)
        ids = [self.stoi.get(t, unk) for t in tokens]
        if None in ids:
            raise KeyError("token not in vocabulary and the vocabulary has no <unk>")
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids → token strings."""
        return [self.itos[int(i)] for i in ids]
