"""The optimiser of the engine's live trainings (the reversal task, skip-gram embeddings).

Written out, not ``torch.optim.Adam``: torch's optimiser constructor imports ``torch._dynamo``,
about a second — longer than the trainings a slide runs while the deck builds. The tests check it
against ``torch.optim.Adam`` step by step.
"""

from __future__ import annotations

import torch


class Adam:
    """Adam (Kingma & Ba 2015, Algorithm 1), written out: the same update as ``torch.optim.Adam``
    without weight decay (see the module's docstring for why it is written here)."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.lr, (self.beta1, self.beta2), self.eps, self.t = lr, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in self.params]  # first moment (mean of gradients)
        self.v = [torch.zeros_like(p) for p in self.params]  # second moment (mean of squared gradients)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        correction1, correction2 = 1 - self.beta1**self.t, 1 - self.beta2**self.t  # bias corrections
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            if p.grad is None:
                continue
            m.mul_(self.beta1).add_(p.grad, alpha=1 - self.beta1)
            v.mul_(self.beta2).addcmul_(p.grad, p.grad, value=1 - self.beta2)
            denominator = (v / correction2).sqrt_().add_(self.eps)
            p.addcdiv_(m, denominator, value=-self.lr / correction1)
