"""What attention replaced: a recurrent network reads a sequence one step at a time (slide "Idea
clave de la sesión": "¿Qué ventaja aporta esto frente a un RNN?").

An Elman RNN (Elman 1990) keeps one hidden state and updates it at every step::

    h_t = tanh(W_x x_t + W_h h_{t−1} + b)

so ``h_t`` depends on ``x_s`` only through the ``t − s`` steps between them: the computation is
sequential (``L`` steps for ``L`` tokens) and a gradient from ``h_t`` back to ``x_s`` is a product of
``t − s`` Jacobians, which shrinks (or grows) with the distance (Bengio et al. 1994). Self-attention
connects every pair of positions in one step.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.attention import init_linear_


class SimpleRNN(nn.Module):
    """An Elman RNN layer: ``h_t = tanh(W_x x_t + W_h h_{t−1} + b)``, ``h_{−1} = 0``.

    Args:
        d_in: width of the inputs ``x_t``. d_hidden: width of the state ``h_t``.
        seed: if given, the weights are drawn from ``torch.Generator().manual_seed(seed)``
            (Xavier-uniform, as the engine's other layers).

    Shapes:
        ``forward(x (B, L, d_in))`` → ``states (B, L, d_hidden)``: ``h_0 … h_{L−1}``, one per step.
    """

    def __init__(self, d_in: int, d_hidden: int, *, seed: int | None = None):
        super().__init__()
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        self.W_x = init_linear_(nn.Linear(d_in, d_hidden), generator)
        self.W_h = init_linear_(nn.Linear(d_hidden, d_hidden, bias=False), generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, _ = x.shape
        h = x.new_zeros(B, self.W_h.in_features)  # (B, d_hidden)
        states = []
        for t in range(L):  # one step after another: step t needs step t − 1
            h = torch.tanh(self.W_x(x[:, t]) + self.W_h(h))  # (B, d_hidden)
            states.append(h)
        return torch.stack(states, dim=1)  # (B, L, d_hidden)
