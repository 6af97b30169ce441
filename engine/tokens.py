"""From text to symbols: tokenization and the vocabulary (slide "Tokens y embeddings").

Word-level tokenization is enough for the lecture's sentences; a real model would use sub-words
(BPE), but the steps are the same: text → tokens → ids → vectors in ``R^d_model`` (the last step
is :mod:`engine.embedding`). Tokenizing imports no torch, so a slide's options can be checked
against its number of tokens without paying for it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence


def _class(char: str) -> str:
    """``"word"`` for a letter or digit of any script; ``"mark"`` for what belongs to the character
    before it: a combining mark (Unicode category M: the dot of "i̇" after lower-casing "İ", Guaraní's
    "g̃", Devanagari's vowel signs, the variation selector of "❤️") or an emoji skin tone (🏽);
    ``"joiner"`` for the zero-width joiner of emoji sequences (👩‍💻); ``"gap"`` for white space,
    control characters (NUL) and invisible format characters (a byte-order mark, a zero-width
    space); ``"sign"`` for
    anything else. (Python's ``re`` has no Unicode categories and ``\\w`` leaves marks out; a loop
    over categories needs no third-party module, which the GPU check's bare environment would lack.)"""
    if char == "\u200d":
        return "joiner"
    category = unicodedata.category(char)
    if char.isalnum() or char == "_":
        return "word"
    if category[0] == "M" or "\U0001f3fb" <= char <= "\U0001f3ff":
        return "mark"
    return "gap" if char.isspace() or category in ("Cf", "Cc") else "sign"  # Cc: NUL and other controls


def _regional(char: str) -> bool:
    """A regional indicator: two of them make a flag (🇪 🇸 → 🇪🇸)."""
    return "\U0001f1e6" <= char <= "\U0001f1ff"


PAD, UNK = "<pad>", "<unk>"


def tokenize(text: str, *, lower: bool = True) -> list[str]:
    """Split ``text`` into word and punctuation tokens (Unicode NFC, lower-cased by default).

    >>> tokenize("El gato se sentó.")
    ['el', 'gato', 'se', 'sentó', '.']
    """
    text = unicodedata.normalize("NFC", text)
    tokens: list[str] = []
    previous = "gap"  # the class of the character before, as it bears on this one
    for char in text.lower() if lower else text:
        kind = _class(char)
        joins = tokens and previous != "gap" and (
            kind in ("mark", "joiner")  # a mark or joiner stays with its character
            or previous == "joiner"  # and so does what a joiner joins
            or (kind == "word" and previous == "word")  # letters make one word
            or (_regional(char) and len(tokens[-1]) == 1 and _regional(tokens[-1])))  # two make a flag
        if joins:
            tokens[-1] += char
        elif kind in ("word", "sign", "mark"):
            tokens.append(char)  # a sign is a token by itself; a mark with nothing before it too
        previous = kind if kind != "mark" else previous
        if kind == "gap":
            previous = "gap"
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
