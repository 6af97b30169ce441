"""The Transformer block: attention and a feed-forward network, each wrapped in a residual connection
with layer normalisation (Vaswani et al. 2017, §3.1, §3.3, §5.4).

In reading order: :class:`LayerNorm` → :class:`FeedForward` → :class:`Residual` →
:class:`TransformerBlock` → :class:`Encoder` (a stack of blocks).

Two placements of the normalisation:

* **post-norm** (the paper, §5.4): ``x = LayerNorm(x + Dropout(Sublayer(x)))``;
* **pre-norm** (GPT-2 and most models since; ``norm_first=True``):
  ``x = x + Dropout(Sublayer(LayerNorm(x)))`` — the residual stream is never normalised, which
  makes deep stacks train without a learning-rate warm-up.

Every module here takes the same weights as its PyTorch counterpart (``from_torch``), and the
tests check that the outputs agree.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from engine.attention import MultiHeadAttention, init_linear_

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": F.relu, "gelu": F.gelu}


class LayerNorm(nn.Module):
    """Layer normalisation (Ba, Kiros & Hinton 2016, §3), written out.

    Each token vector is normalised over its ``d_model`` features, then scaled and shifted::

        y = (x − mean(x)) / √(var(x) + eps) · γ + β

    with the *biased* variance (divide by ``d_model``), as :class:`torch.nn.LayerNorm` does.

    Args:
        d_model: width of the normalised (last) dimension.
        eps: added to the variance for numerical safety.

    Shapes:
        ``(..., d_model)`` → ``(..., d_model)``.
    """

    def __init__(self, d_model: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))  # γ
        self.bias = nn.Parameter(torch.zeros(d_model))  # β

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # float16's largest value is 65504: the squares of [1000, -1000, …] overflow it. Half inputs
        # are normalised in float32 and cast back (as torch's own layer_norm does, pytorch#66707).
        x32 = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        mean = x32.mean(dim=-1, keepdim=True)  # (..., 1)
        var = x32.var(dim=-1, keepdim=True, unbiased=False)  # (..., 1)
        normed = ((x32 - mean) * torch.rsqrt(var + self.eps)).to(x.dtype)  # (..., d_model)
        return normed * self.weight.to(x.dtype) + self.bias.to(x.dtype)  # (..., d_model)


class FeedForward(nn.Module):
    """The position-wise feed-forward network (Vaswani et al. 2017, §3.3, eq. (2)).

    ``FFN(x) = W_2 · act(W_1 x + b_1) + b_2``, applied to each position separately and identically
    (ReLU in the paper, GELU in BERT/GPT). Dropout, if any, acts on the hidden activations, as in
    :class:`torch.nn.TransformerEncoderLayer`.

    Args:
        d_model: input and output width. d_ff: hidden width (2048 = 4·512 in the paper).
        activation: ``"relu"`` or ``"gelu"`` (the exact, erf-based GELU).
        dropout: dropout probability on the hidden layer (training mode only).
        seed, generator: where the weights are drawn from (see :class:`MultiHeadAttention`).

    Shapes:
        ``(..., d_model)`` → ``(..., d_model)``.

    Raises:
        ValueError: for an unknown activation.
    """

    def __init__(self, d_model: int, d_ff: int, *, activation: str = "relu", dropout: float = 0.0,
                 seed: int | None = None, generator: torch.Generator | None = None):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if seed is not None:
            generator = torch.Generator().manual_seed(seed)
        self.activation = activation
        self.W_1 = init_linear_(nn.Linear(d_model, d_ff), generator)
        self.W_2 = init_linear_(nn.Linear(d_ff, d_model), generator)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = ACTIVATIONS[self.activation](self.W_1(x))  # (..., d_ff)
        return self.W_2(self.dropout(hidden))  # (..., d_model)


class Residual(nn.Module):
    """A sublayer connection: residual ``x + …`` around a sublayer, plus layer normalisation.

    Post-norm, the paper's §5.4: "the output of each sub-layer is LayerNorm(x + Sublayer(x))",
    with dropout on the sublayer's output. Pre-norm (``norm_first=True``): ``x +
    Dropout(Sublayer(LayerNorm(x)))``.

    ``skip=False`` drops the ``x +``: the sub-layer's output replaces ``x`` instead of being added to
    it (``LayerNorm(Sublayer(x))``, or ``Sublayer(LayerNorm(x))`` pre-norm). No Transformer does
    this; it is there to show what the skip connection is for (slide "Bloque Transformer").

    Args:
        d_model: width of ``x``. dropout: on the sublayer's output (training mode only).
        norm_first: pre-norm instead of post-norm. eps: the :class:`LayerNorm`'s epsilon.
        skip: keep the residual connection (the default).

    Shapes:
        ``forward(x, sublayer)``: ``x`` ``(..., d_model)``, ``sublayer`` maps ``(..., d_model)`` to
        ``(..., d_model)``; returns ``(..., d_model)``.
    """

    def __init__(self, d_model: int, *, dropout: float = 0.0, norm_first: bool = False, eps: float = 1e-5,
                 skip: bool = True):
        super().__init__()
        self.norm_first, self.skip = norm_first, skip
        self.norm = LayerNorm(d_model, eps)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, sublayer: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        kept = x if self.skip else 0  # the residual: x flows past the sub-layer unchanged
        if self.norm_first:
            return kept + self.dropout(sublayer(self.norm(x)))  # (..., d_model)
        return self.norm(kept + self.dropout(sublayer(x)))  # (..., d_model)


class TransformerBlock(nn.Module):
    """One encoder layer (Vaswani et al. 2017, §3.1): self-attention, then a feed-forward network,
    each inside a :class:`Residual` connection.

    Args:
        d_model: width of the token vectors. num_heads: heads of the self-attention.
        d_ff: hidden width of the :class:`FeedForward`.
        dropout: one probability for the attention weights, the feed-forward hidden layer and the
            two residual branches, as in :class:`torch.nn.TransformerEncoderLayer`.
        norm_first: pre-norm (``True``) or the paper's post-norm (``False``).
        activation: ``"relu"`` or ``"gelu"``. layer_norm_eps: the epsilon of both layer norms.
        batch_first: layout of ``x``, ``(B, L, d_model)`` or ``(L, B, d_model)``.
        skip: keep the residual connections (``False`` only to show what they are for; see :class:`Residual`).
        seed, generator: where the weights are drawn from.

    Shapes:
        ``forward(x (B, L, d_model), mask=None, *, is_causal=False, need_weights=False)`` returns
        ``y (B, L, d_model)``, or ``(y, weights (B, H, L, L))`` when ``need_weights=True``. The mask
        is as in :class:`engine.attention.MultiHeadAttention` (``True`` = may attend).
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, *, dropout: float = 0.0,
                 norm_first: bool = False, activation: str = "relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = True, skip: bool = True, seed: int | None = None,
                 generator: torch.Generator | None = None):
        super().__init__()
        if seed is not None:
            generator = torch.Generator().manual_seed(seed)
        self.norm_first, self.batch_first = norm_first, batch_first
        self.attn = MultiHeadAttention(d_model, num_heads, dropout=dropout, batch_first=batch_first,
                                       generator=generator)
        self.ff = FeedForward(d_model, d_ff, activation=activation, dropout=dropout, generator=generator)
        self.residual1 = Residual(d_model, dropout=dropout, norm_first=norm_first, eps=layer_norm_eps, skip=skip)
        self.residual2 = Residual(d_model, dropout=dropout, norm_first=norm_first, eps=layer_norm_eps, skip=skip)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, *, is_causal: bool = False,
                need_weights: bool = False):
        weights = None

        def self_attention(h: torch.Tensor) -> torch.Tensor:
            nonlocal weights
            out, weights = self.attn(h, mask=mask, is_causal=is_causal, need_weights=need_weights)
            return out  # (B, L, d_model)

        x = self.residual1(x, self_attention)  # (B, L, d_model)
        x = self.residual2(x, self.ff)  # (B, L, d_model)
        return (x, weights) if need_weights else x

    @classmethod
    def from_torch(cls, layer: nn.TransformerEncoderLayer) -> TransformerBlock:
        """A copy of ``layer``: weights, ``norm_first``, activation, eps, ``batch_first``, dropout, mode.

        Raises:
            ValueError: for an activation other than ReLU or exact GELU, or layer norms without bias.
        """
        activation = _activation_name(layer.activation)
        if layer.norm1.bias is None:
            raise ValueError("TransformerBlock.from_torch: LayerNorm without bias is not supported")
        d_model, d_ff = layer.linear1.in_features, layer.linear1.out_features
        ours = cls(d_model, layer.self_attn.num_heads, d_ff, dropout=layer.dropout.p, norm_first=layer.norm_first,
                   activation=activation, layer_norm_eps=layer.norm1.eps, batch_first=layer.self_attn.batch_first)
        ours.attn = MultiHeadAttention.from_torch(layer.self_attn)
        ours.to(device=layer.linear1.weight.device, dtype=layer.linear1.weight.dtype)
        with torch.no_grad():
            for mine, theirs in ((ours.ff.W_1, layer.linear1), (ours.ff.W_2, layer.linear2),
                                 (ours.residual1.norm, layer.norm1), (ours.residual2.norm, layer.norm2)):
                mine.weight.copy_(theirs.weight)
                mine.bias.copy_(theirs.bias)
        return ours.train(layer.training)


def _activation_name(activation) -> str:
    """torch stores a layer's activation as a function or a module; name it."""
    if activation is F.relu or isinstance(activation, nn.ReLU):
        return "relu"
    if activation is F.gelu or (isinstance(activation, nn.GELU) and activation.approximate == "none"):
        return "gelu"
    raise ValueError(f"only relu and (exact) gelu activations are supported, got {activation!r}")


class Encoder(nn.Module):
    """A stack of ``num_layers`` :class:`TransformerBlock` (Vaswani et al. 2017, §3.1: N = 6).

    With pre-norm blocks the residual stream is never normalised inside the stack, so a final
    :class:`LayerNorm` follows the last block (as in GPT-2); ``final_norm`` defaults to
    ``norm_first``.

    Args:
        num_layers: number of blocks. The other arguments are those of :class:`TransformerBlock`.
        final_norm: whether a :class:`LayerNorm` follows the stack (default: ``norm_first``).
        skip: keep the residual connections (see :class:`Residual`).
        seed: if given, all blocks draw their weights, in order, from one seeded generator.

    Shapes:
        ``forward(x (B, L, d_model), mask=None, *, is_causal=False, need_weights=False)`` returns
        ``y (B, L, d_model)``, or ``(y, [weights (B, H, L, L) per layer])`` when ``need_weights``.
    """

    def __init__(self, num_layers: int, d_model: int, num_heads: int, d_ff: int, *, dropout: float = 0.0,
                 norm_first: bool = False, activation: str = "relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = True, final_norm: bool | None = None, skip: bool = True,
                 seed: int | None = None):
        super().__init__()
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        self.layers = nn.ModuleList(
            TransformerBlock(d_model, num_heads, d_ff, dropout=dropout, norm_first=norm_first,
                             activation=activation, layer_norm_eps=layer_norm_eps, batch_first=batch_first,
                             skip=skip, generator=generator)
            for _ in range(num_layers))
        final_norm = norm_first if final_norm is None else final_norm
        self.norm = LayerNorm(d_model, layer_norm_eps) if final_norm else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, *, is_causal: bool = False,
                need_weights: bool = False):
        all_weights = []
        for layer in self.layers:
            if need_weights:
                x, weights = layer(x, mask, is_causal=is_causal, need_weights=True)  # (B, L, d_model)
                all_weights.append(weights)  # (B, H, L, L)
            else:
                x = layer(x, mask, is_causal=is_causal)  # (B, L, d_model)
        if self.norm is not None:
            x = self.norm(x)
        return (x, all_weights) if need_weights else x

    @classmethod
    def from_torch(cls, encoder: nn.TransformerEncoder) -> Encoder:
        """A copy of a :class:`torch.nn.TransformerEncoder`: every layer, and its final ``norm`` if any.

        Note: with ``enable_nested_tensor=True`` and a key padding mask, torch's encoder returns
        zeros at padded query positions in eval mode; ours computes them like any other position.
        """
        first = encoder.layers[0]
        ours = cls(0, first.linear1.in_features, first.self_attn.num_heads, first.linear1.out_features,
                   final_norm=encoder.norm is not None, layer_norm_eps=first.norm1.eps)
        ours.layers = nn.ModuleList(TransformerBlock.from_torch(layer) for layer in encoder.layers)
        if encoder.norm is not None:
            ours.norm.to(device=encoder.norm.weight.device, dtype=encoder.norm.weight.dtype)
            ours.norm.eps = encoder.norm.eps
            with torch.no_grad():
                ours.norm.weight.copy_(encoder.norm.weight)
                ours.norm.bias.copy_(encoder.norm.bias)
        return ours.train(encoder.training)
