"""Specs → arrays: run :mod:`engine` for one block and return the numbers its figure shows.

Every function returns a JSON-ready ``dict`` (lists of floats, not tensors): it is written beside the
figure for students, read back by the renderers, and compared by the tests. This module imports
torch; the filter imports it only when a figure misses the cache.
"""

from __future__ import annotations

import math

import torch

from engine.attention import SelfAttention, scaled_dot_product_attention
from engine.device import pick
from engine.masks import causal_mask
from engine.positional import sinusoidal_encoding
from engine.tokens import TokenEmbedding, Vocabulary, tokenize
from filters.options import AttentionSpec, PosencSpec, StepsSpec


def _listed(t: torch.Tensor) -> list:
    return t.detach().to("cpu", torch.float64).tolist()


@torch.no_grad()
def compute_attention(spec: AttentionSpec, device: str = "cpu") -> dict:
    """Self-attention weights of ``spec.sentence``.

    ``X = E + P`` (embedding + sinusoidal encoding, slide "Positional Encoding"),
    ``Q, K, V = X W_Q, X W_K, X W_V`` and ``A = softmax(QKᵀ/√d_k)`` (Vaswani et al. 2017, §3.2.1).
    Weights are drawn on the CPU from the seed, then moved, so every device starts from the same numbers.

    Returns:
        ``tokens`` (L strings), ``q``/``k`` (L × d_k), ``v`` (L × d_k), ``scale``, ``mask``
        (L × L booleans, True = may attend, or ``None``), ``weights`` (L × L, rows sum to 1),
        ``output`` (L × d_k), and the inputs ``sentence``, ``seed``, ``d_model``, ``d_k``,
        ``positional``, ``causal``, ``device``.
    """
    dev = pick(device)
    tokens = tokenize(spec.sentence)
    vocab = Vocabulary(tokens)
    d_k = spec.d_k or spec.d_model
    embedding = TokenEmbedding(len(vocab), spec.d_model, seed=spec.seed)
    attention = SelfAttention(spec.d_model, d_k, seed=spec.seed + 1)
    embedding.to(dev), attention.to(dev)

    ids = vocab.encode(tokens).to(dev)  # (L,)
    x = embedding(ids)  # (L, d_model)
    if spec.positional:
        x = x + sinusoidal_encoding(len(tokens), spec.d_model, device=dev)  # X = E + P
    q, k, v = attention.project(x)  # (L, d_k) each
    mask = causal_mask(len(tokens), device=dev) if spec.causal else None  # (L, L)
    scale = 1.0 / math.sqrt(d_k)
    output, weights = scaled_dot_product_attention(q, k, v, mask, scale=scale)  # (L, d_k), (L, L)
    return {
        "kind": "attention",
        "sentence": spec.sentence, "seed": spec.seed, "d_model": spec.d_model, "d_k": d_k,
        "positional": spec.positional, "causal": spec.causal, "device": dev.type,
        "tokens": tokens,
        "q": _listed(q), "k": _listed(k), "v": _listed(v),
        "scale": scale,
        "mask": None if mask is None else mask.cpu().tolist(),
        "weights": _listed(weights),
        "output": _listed(output),
    }


@torch.no_grad()
def compute_posenc(spec: PosencSpec, device: str = "cpu") -> dict:
    """The sinusoidal encoding ``P`` (Vaswani et al. 2017, §3.5), shape ``(num_positions, d_model)``."""
    dev = pick(device)
    encoding = sinusoidal_encoding(spec.num_positions, spec.d_model, spec.base, device=dev)
    return {
        "kind": "posenc",
        "num_positions": spec.num_positions, "d_model": spec.d_model, "base": spec.base,
        "dims": list(spec.dims), "device": dev.type,
        "encoding": _listed(encoding),
    }


@torch.no_grad()
def compute_steps(spec: StepsSpec, device: str = "cpu") -> dict:
    """Every intermediate of ``softmax(QKᵀ/√d_k) V`` for a small worked example.

    Q, K, V are the block's, or integers in [-2, 2] drawn from ``spec.seed`` (easy to redo by hand).

    Returns:
        ``q`` (L × d_k), ``k`` (S × d_k), ``v`` (S × d_v), ``scale`` = 1/√d_k, ``d_k``,
        ``scores`` = QKᵀ·scale (L × S), ``weights`` = softmax(scores) (L × S), ``output`` (L × d_v).
    """
    dev = pick(device)
    if spec.q is None:
        generator = torch.Generator().manual_seed(spec.seed)
        draw = lambda rows, cols: torch.randint(-2, 3, (rows, cols), generator=generator).double()  # noqa: E731
        q, k, v = draw(spec.length, spec.d_k), draw(spec.length, spec.d_k), draw(spec.length, spec.d_v)
    else:
        q, k, v = (torch.tensor(m, dtype=torch.float64) for m in (spec.q, spec.k, spec.v))
    q, k, v = q.to(dev), k.to(dev), v.to(dev)
    d_k = q.shape[-1]
    scale = 1.0 / math.sqrt(d_k)
    scores = (q @ k.T) * scale  # (L, S): the slide's first step, S = QKᵀ/√d_k
    output, weights = scaled_dot_product_attention(q, k, v, scale=scale)  # (L, d_v), (L, S)
    return {
        "kind": "attention-steps", "device": dev.type, "d_k": d_k, "precision": spec.precision,
        "q": _listed(q), "k": _listed(k), "v": _listed(v),
        "scale": scale,
        "scores": _listed(scores),
        "weights": _listed(weights),
        "output": _listed(output),
    }


COMPUTE = {
    "attention": compute_attention,
    "posenc": compute_posenc,
    "attention-steps": compute_steps,
}


def compute(spec, device: str = "cpu") -> dict:
    """Dispatch on ``spec.kind``; see the functions above for what each returns."""
    return COMPUTE[spec.kind](spec, device)
