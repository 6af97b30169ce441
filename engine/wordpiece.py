"""BERT's WordPiece tokenizer, standard library only (Devlin et al. 2019, §3 "Input/Output
Representations"; Wu et al. 2016 for WordPiece).

A line of text becomes sub-words of a fixed 30,522-entry vocabulary in two stages, as Google's
``tokenization.py`` (github.com/google-research/bert) does it:

1. :func:`basic_tokenize` — clean the text (drop NUL, U+FFFD and control characters, turn every
   white space into a space), put spaces around CJK ideographs (they are one token each), split on
   white space, lower-case and strip accents (NFD, then drop the combining marks, category ``Mn``),
   and split off every punctuation character (Unicode ``P*`` and the ASCII symbols ``$ + < = > ^ `
   | ~``, which Unicode files as symbols but BERT treats as punctuation);
2. :meth:`WordPiece.split_word` — each word is cut greedily, longest match first, into pieces of the
   vocabulary; every piece after the first is written with ``##`` ("playing" → ``play ##ing``). A
   word that cannot be cut, or one longer than 100 characters, becomes ``[UNK]``.

The special tokens (``[CLS]``, ``[SEP]``, ``[PAD]``, ``[MASK]``, ``[UNK]``), written as such in the
text, stay single tokens, as in Hugging Face's tokenizers (so a slide can show ``[MASK]``).

The tests check every step against ``transformers.BertTokenizer`` on more than a thousand lines.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable

CLS, SEP, PAD, UNK, MASK = "[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]"
SPECIALS = (CLS, SEP, PAD, UNK, MASK)
MAX_CHARS_PER_WORD = 100  # a longer "word" is [UNK] (BERT's max_input_chars_per_word)

# The CJK Unified Ideographs blocks, as BERT lists them (_is_chinese_char): Han only, not Hangul or
# kana, which are written with spaces or are cut into WordPieces like any other script.
_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
               (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))
_SPECIALS_RE = re.compile("(" + "|".join(re.escape(s) for s in SPECIALS) + ")")


def _is_whitespace(char: str) -> bool:
    """Space, tab, newline, carriage return, or a Unicode space separator (``Zs``)."""
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    """A control or other invisible character (Unicode ``C*``), except the white space tab, LF, CR."""
    return char not in "\t\n\r" and unicodedata.category(char).startswith("C")


def _is_punctuation(char: str) -> bool:
    """Unicode punctuation (``P*``), or any ASCII character that is neither a letter, a digit nor
    white space: BERT counts ``$``, ``^``, `````… as punctuation, though Unicode calls them symbols."""
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(char: str) -> bool:
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _clean(text: str) -> str:
    """Drop NUL, U+FFFD and control characters; every white space character becomes a space; a
    space on each side of every CJK ideograph."""
    out = []
    for char in text:
        if char in "\x00\ufffd" or _is_control(char):
            continue
        if _is_whitespace(char):
            out.append(" ")
        elif _is_cjk(char):
            out.append(f" {char} ")
        else:
            out.append(char)
    return "".join(out)


def _strip_accents(word: str) -> str:
    """``"café"`` → ``"cafe"``: decompose (NFD), then drop the non-spacing combining marks (``Mn``)."""
    return "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")


def _split_punctuation(word: str) -> list[str]:
    """``"don't"`` → ``["don", "'", "t"]``: every punctuation character is a word of its own."""
    pieces: list[str] = []
    start_new = True
    for char in word:
        if _is_punctuation(char):
            pieces.append(char)
            start_new = True
        else:
            if start_new:
                pieces.append("")
            pieces[-1] += char
            start_new = False
    return pieces


def basic_tokenize(text: str, *, lower: bool = True) -> list[str]:
    """BERT's ``BasicTokenizer``: clean, split CJK, white space, lower case and accents, punctuation.

    Args:
        text: any string. lower: lower-case and strip accents (the "uncased" models; default).

    Returns:
        the words, each a whole token or a punctuation character (no special tokens: see
        :meth:`WordPiece.tokenize` for those).
    """
    words = []
    # NFC first (as Hugging Face does): "é" typed as e + U+0301 and "é" typed as one character
    # become the same word before anything is split.
    for word in unicodedata.normalize("NFC", _clean(text)).split():
        if lower:
            word = _strip_accents(word.lower())
        words.extend(w for w in _split_punctuation(word) if w)
    return words


def load_vocab(path: str | os.PathLike) -> dict[str, int]:
    """``vocab.txt``: one token a line, its id the line's number (from 0).

    Raises:
        FileNotFoundError: when the file is missing.
        ValueError: when a special token is missing from it.
    """
    with open(path, encoding="utf-8") as f:
        vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
    missing = [s for s in SPECIALS if s not in vocab]
    if missing:
        raise ValueError(f"{path}: the vocabulary lacks the special tokens {', '.join(missing)}")
    return vocab


class WordPiece:
    """A WordPiece tokenizer over a vocabulary: text → sub-word tokens → ids.

    Args:
        vocab: token → id, as :func:`load_vocab` reads it.
        lower: the model is uncased (lower-case and strip accents first).

    Example::

        >>> wp = WordPiece(load_vocab("vocab.txt"))
        >>> wp.tokenize("The unaffable cat")
        ['the', 'una', '##ffa', '##ble', 'cat']
        >>> wp.encode("The cat")          # with [CLS] and [SEP]
        [101, 1996, 4937, 102]
    """

    def __init__(self, vocab: dict[str, int], *, lower: bool = True):
        self.vocab, self.lower = vocab, lower
        self.itos = {i: token for token, i in vocab.items()}

    def split_word(self, word: str) -> list[str]:
        """Greedy longest-match-first: the longest prefix in the vocabulary, then the longest
        ``##``-continuation of the rest, and so on; ``[UNK]`` for the whole word when some rest has
        no piece, or when the word has more than :data:`MAX_CHARS_PER_WORD` characters."""
        if len(word) > MAX_CHARS_PER_WORD:
            return [UNK]
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
            else:
                return [UNK]
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        """The WordPiece tokens of ``text``, without ``[CLS]``/``[SEP]``; special tokens written in
        the text are kept whole."""
        tokens: list[str] = []
        for i, part in enumerate(_SPECIALS_RE.split(text)):
            if i % 2:  # a special token, as written (the regex's group)
                tokens.append(part)
                continue
            for word in basic_tokenize(part, lower=self.lower):
                tokens.extend(self.split_word(word))
        return tokens

    def encode(self, text: str, *, max_tokens: int | None = None) -> list[int]:
        """``[CLS] tokens [SEP]`` as ids; with ``max_tokens``, the tokens cut so that the whole is at
        most that long (``[SEP]`` kept last)."""
        tokens = self.tokenize(text)
        if max_tokens is not None:
            tokens = tokens[:max(max_tokens - 2, 0)]
        return self.to_ids([CLS, *tokens, SEP])

    def to_ids(self, tokens: Iterable[str]) -> list[int]:
        """Token → id (``[UNK]``'s id for a token not in the vocabulary)."""
        unk = self.vocab[UNK]
        return [self.vocab.get(token, unk) for token in tokens]

    def to_tokens(self, ids: Iterable[int]) -> list[str]:
        """Id → token."""
        return [self.itos[int(i)] for i in ids]
