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
from filters.errors import BlockError
from filters.options import AttentionSpec, PermutationSpec, PosencSpec, ScalingSpec, StepsSpec, TrainedSpec


def _listed(t: torch.Tensor) -> list:
    return t.detach().to("cpu", torch.float64).tolist()


def _sentence_model(vocab: Vocabulary, *, seed: int, d_model: int, d_k: int, dev: torch.device):
    """The embedding and the one attention head of ``.attention`` and ``.permutation``, drawn from ``seed``."""
    embedding = TokenEmbedding(len(vocab), d_model, seed=seed).to(dev)
    attention = SelfAttention(d_model, d_k, seed=seed + 1).to(dev)
    return embedding, attention


def _self_attention(tokens, vocab, embedding, attention, *, positional: bool, causal: bool, dev):
    """``X = E + P`` → ``Q, K, V`` → ``softmax(QKᵀ/√d_k) V``; returns every intermediate."""
    ids = vocab.encode(tokens).to(dev)  # (L,)
    x = embedding(ids)  # (L, d_model)
    if positional:
        x = x + sinusoidal_encoding(len(tokens), embedding.d_model, device=dev)  # X = E + P
    q, k, v = attention.project(x)  # (L, d_k) each
    mask = causal_mask(len(tokens), device=dev) if causal else None  # (L, L)
    scale = 1.0 / math.sqrt(q.shape[-1])
    output, weights = scaled_dot_product_attention(q, k, v, mask, scale=scale)  # (L, d_k), (L, L)
    return q, k, v, mask, scale, output, weights


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
    model = _sentence_model(vocab, seed=spec.seed, d_model=spec.d_model, d_k=d_k, dev=dev)
    q, k, v, mask, scale, output, weights = _self_attention(tokens, vocab, *model, positional=spec.positional,
                                                            causal=spec.causal, dev=dev)
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


@torch.no_grad()
def compute_permutation(spec: PermutationSpec, device: str = "cpu") -> dict:
    """Self-attention of a sentence and of the same tokens in another order, with the same weights.

    With ``π`` the new order (``permuted[i] = tokens[order[i]]``), permutation equivariance says
    ``A'[i, j] = A[order[i], order[j]]`` when no positional encoding is added (slide "Problema clave:
    el orden"). ``max_difference`` measures how far the two are from that.

    Returns:
        ``tokens``, ``permuted_tokens``, ``order``, ``weights`` and ``permuted_weights`` (L × L),
        ``max_difference`` = max |A' − A[order][:, order]|, and the inputs.
    """
    dev = pick(device)
    tokens = tokenize(spec.sentence)
    order = list(spec.order) if spec.order is not None else list(range(len(tokens)))[::-1]
    if len(order) != len(tokens):
        raise BlockError(f"the order has {len(order)} positions but the sentence has {len(tokens)} tokens", key="order")
    permuted = [tokens[i] for i in order]
    vocab = Vocabulary(tokens)
    model = _sentence_model(vocab, seed=spec.seed, d_model=spec.d_model, d_k=spec.d_model, dev=dev)
    weights = _self_attention(tokens, vocab, *model, positional=spec.positional, causal=False, dev=dev)[-1]
    permuted_weights = _self_attention(permuted, vocab, *model, positional=spec.positional, causal=False, dev=dev)[-1]
    index = torch.tensor(order, device=dev)
    expected = weights[index][:, index]  # (L, L): A[order[i], order[j]]
    return {
        "kind": "permutation", "sentence": spec.sentence, "seed": spec.seed, "d_model": spec.d_model,
        "positional": spec.positional, "device": dev.type,
        "tokens": tokens, "permuted_tokens": permuted, "order": order,
        "weights": _listed(weights), "permuted_weights": _listed(permuted_weights),
        "max_difference": float((permuted_weights - expected).abs().max()),
    }


@torch.no_grad()
def compute_scaling(spec: ScalingSpec, device: str = "cpu") -> dict:
    """How peaked ``softmax(q·k)`` is, with and without the ``1/√d_k`` scale, as ``d_k`` grows.

    For each ``d_k``: ``samples`` queries and ``samples × keys`` keys with independent N(0, 1)
    entries (so ``q·k`` has variance ``d_k``, §3.2.1 footnote 4), attention through the engine with
    ``scale = 1`` and with the default ``1/√d_k``. Reports the mean of each query's largest weight
    (``1/keys`` = uniform, 1 = one-hot: softmax saturated, its gradient vanishing) and the standard
    deviation of the scores.
    """
    dev = pick(device)
    generator = torch.Generator().manual_seed(spec.seed)
    rows = {"max_weight_unscaled": [], "max_weight_scaled": [], "score_std_unscaled": [], "score_std_scaled": []}
    for d_k in spec.d_k:
        q = torch.randn(spec.samples, 1, d_k, generator=generator).to(dev)  # (N, 1, d_k): one query each
        k = torch.randn(spec.samples, spec.keys, d_k, generator=generator).to(dev)  # (N, S, d_k)
        for name, scale in (("unscaled", 1.0), ("scaled", None)):
            _, weights = scaled_dot_product_attention(q, k, k, scale=scale)  # (N, 1, S)
            used = 1.0 if scale else 1.0 / math.sqrt(d_k)
            scores = (q @ k.transpose(-2, -1)) * used  # (N, 1, S)
            rows[f"max_weight_{name}"].append(float(weights.amax(-1).mean()))
            rows[f"score_std_{name}"].append(float(scores.std()))
    return {"kind": "scaling", "d_k": list(spec.d_k), "keys": spec.keys, "samples": spec.samples,
            "seed": spec.seed, "device": dev.type, **rows}


def compute_trained(spec: TrainedSpec, device: str = "cpu") -> dict:
    """Train :mod:`engine.toy`'s reversal model and return its attention on a held-out sequence.

    Returns:
        ``tokens`` (input), ``prediction`` (output), ``weights`` (L × L, averaged over heads),
        ``head_weights`` (H × L × L), ``accuracy`` on held-out sequences, ``steps``, ``final_loss``,
        ``train_seconds`` and ``config``.
    """
    from engine.toy import train_reversal

    dev = pick(device)
    result = train_reversal(seed=spec.seed, seq_len=spec.seq_len, vocab=spec.vocab, steps=spec.steps,
                            d_model=spec.d_model, num_heads=spec.heads, device=dev)
    return {"kind": "trained-attention", "device": dev.type, **result.to_dict()}


COMPUTE = {
    "attention": compute_attention,
    "posenc": compute_posenc,
    "attention-steps": compute_steps,
    "permutation": compute_permutation,
    "scaling": compute_scaling,
    "trained-attention": compute_trained,
}


def compute(spec, device: str = "cpu") -> dict:
    """Dispatch on ``spec.kind``; see the functions above for what each returns."""
    return COMPUTE[spec.kind](spec, device)


def compute_all_from_deck(deck, *, device="cpu") -> dict[str, object]:
    """Recompute every live block of ``deck`` (a Markdown path) on ``device``, for ``make gpu-check``.

    Returns:
        ``{"<block>.<array>": values}`` for every array a figure shows. For ``.trained-attention``,
        whose training differs in the last bits between devices, only what the slide shows must
        agree: the held-out ``accuracy`` and the ``argmax`` of each weights row.
    """
    from pathlib import Path

    from filters.options import parse_block
    from filters.scan import live_blocks

    arrays: dict[str, object] = {}
    for n, (kind, ident, attributes, body) in enumerate(live_blocks(Path(deck).read_text()), start=1):
        data = compute(parse_block(kind, attributes, body), str(getattr(device, "type", device)))
        name = ident or f"{kind}-{n}"
        if kind == "trained-attention":
            arrays[f"{name}.accuracy"] = data["accuracy"]
            arrays[f"{name}.argmax"] = torch.tensor(data["weights"]).argmax(-1).tolist()
            continue
        for key, value in data.items():
            if isinstance(value, (int, float, list)) and not isinstance(value, bool) and key != "train_seconds":
                try:
                    arrays[f"{name}.{key}"] = torch.tensor(value, dtype=torch.float64)
                except (TypeError, ValueError):
                    pass  # token strings
    return arrays
