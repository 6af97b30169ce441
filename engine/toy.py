"""Tasks learned live: reversing a sequence of symbols with one attention layer, and with a deep
stack of Transformer blocks, with and without residual connections.

The slide shows that attention *learns where to look*: trained to output ``x_{L-1}, …, x_0`` for
an input ``x_0, …, x_{L-1}``, the layer's weights become an anti-diagonal — output position ``i``
looks at input position ``L-1-i`` — and the model gets every held-out sequence right.

The model is built from the engine's own modules, in lecture order::

    ids (B, S) ──TokenEmbedding + LearnedPositionalEmbedding──▶ keys/values (B, S, d_model)
    output positions ──LearnedPositionalEmbedding──▶ queries (B, L, d_model)
    MultiHeadAttention(queries, keys, values) ──Linear──▶ logits (B, L, vocab)

The queries carry *only* position, so the only way to solve the task is to route by position —
which is what the heatmap shows. The values carry the token, which the readout copies.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from engine.attention import MultiHeadAttention
from engine.block import Encoder
from engine.embedding import TokenEmbedding
from engine.optim import Adam
from engine.positional import LearnedPositionalEmbedding
from engine.tokens import Vocabulary


@dataclass(frozen=True)
class ReversalConfig:
    """Everything that decides the trained model (same config + same seed ⇒ same numbers on CPU).

    ``vocab`` may be given as a string or any sequence of symbols; a non-string one is stored as a
    tuple (so the config stays hashable and ``asdict`` gives the same value however it was given).
    """

    seq_len: int = 8  # L = S: longer sequences need more steps and a wider model
    vocab: str | tuple[str, ...] = "ABCDEFGHIJ"  # the symbols; more of them make the readout harder
    d_model: int = 32  # width of tokens, positions and attention; wider learns faster, costs time
    num_heads: int = 1  # one head is enough to reverse; more heads split the routing
    steps: int = 300  # Adam steps; the loss is near zero well before the default
    batch_size: int = 64  # sequences per step
    lr: float = 1e-2  # Adam learning rate
    train_size: int = 4096  # distinct training sequences
    held_out: int = 512  # distinct sequences never trained on, used for the accuracy
    seed: int = 0  # seeds the data, the initial weights and the batch order

    def __post_init__(self):
        vocab = "".join(self.vocab) if isinstance(self.vocab, str) else tuple(self.vocab)
        object.__setattr__(self, "vocab", vocab)  # frozen: the dataclass way to normalise a field


@dataclass
class ReversalResult:
    """What the slide needs from a training run.

    ``weights`` has shape ``(L, S)`` (query/output positions on rows, key/input positions on
    columns; rows sum to 1), averaged over heads; ``head_weights`` has shape ``(H, L, S)``.
    """

    tokens: list[str]  # an example held-out input sequence
    prediction: list[str]  # the model's output for it
    weights: list[list[float]]  # (L, S) attention of that example, averaged over heads
    head_weights: list[list[list[float]]]  # (H, L, S) per head
    accuracy: float  # exact-match rate on the held-out sequences, in [0, 1]
    train_seconds: float  # wall-clock time of the training loop
    steps: int
    final_loss: float  # cross-entropy of the last training batch
    config: ReversalConfig = field(default_factory=ReversalConfig)

    def to_dict(self) -> dict:
        return asdict(self)


class ReversalModel(nn.Module):
    """One cross-attention layer from positional queries to token+position keys, then a readout.

    Shapes:
        ``forward(ids (B, S) long, need_weights=False)`` → ``(logits (B, L, vocab), weights
        (B, H, L, S) or None)`` with ``L = S``.
    """

    def __init__(self, cfg: ReversalConfig):
        super().__init__()
        V, L, d = len(cfg.vocab), cfg.seq_len, cfg.d_model
        self.embed = TokenEmbedding(V, d, seed=cfg.seed)
        self.key_position = LearnedPositionalEmbedding(L, d, std=1.0, seed=cfg.seed + 1)
        self.query_position = LearnedPositionalEmbedding(L, d, std=1.0, seed=cfg.seed + 2)
        self.attn = MultiHeadAttention(d, cfg.num_heads, seed=cfg.seed + 3)
        self.readout = nn.Linear(d, V)
        nn.init.normal_(self.readout.weight, std=d**-0.5, generator=torch.Generator().manual_seed(cfg.seed + 4))
        nn.init.zeros_(self.readout.bias)

    def forward(self, ids: torch.Tensor, need_weights: bool = False):
        B, S = ids.shape
        memory = self.embed(ids) + self.key_position(S)  # (B, S, d_model)
        queries = self.query_position(S).expand(B, S, -1)  # (L, d_model) -> (B, L, d_model)
        out, weights = self.attn(queries, memory, memory, need_weights=need_weights)  # (B, L, d_model)
        return self.readout(out), weights  # (B, L, vocab), (B, H, L, S)


def make_data(cfg: ReversalConfig, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``train_size`` + ``held_out`` distinct random sequences, split into two disjoint sets.

    Returns:
        ``(train (train_size, L), held_out (held_out, L))``, ``torch.long`` ids.

    Raises:
        ValueError: if the vocabulary is too small to give that many distinct sequences.
    """
    wanted = cfg.train_size + cfg.held_out
    if len(cfg.vocab) ** cfg.seq_len < 2 * wanted:
        raise ValueError(f"{len(cfg.vocab)}^{cfg.seq_len} sequences are too few for {wanted} distinct ones")
    pool = torch.randint(len(cfg.vocab), (2 * wanted, cfg.seq_len), generator=generator)  # (2N, L)
    pool = torch.unique(pool, dim=0)  # distinct rows, sorted
    pool = pool[torch.randperm(len(pool), generator=generator)[:wanted]]  # (N, L), shuffled
    return pool[: cfg.train_size], pool[cfg.train_size :]


def exact_match(model: ReversalModel, ids: torch.Tensor) -> float:
    """Fraction of sequences whose whole reversal the model gets right."""
    with torch.no_grad():
        logits, _ = model(ids)  # (N, L, vocab)
    return (logits.argmax(-1) == ids.flip(-1)).all(dim=-1).float().mean().item()


def train_reversal(config: ReversalConfig | None = None, *, device: str | torch.device = "cpu",
                   num_threads: int | None = 1, example: int = 0) -> ReversalResult:
    """Train :class:`ReversalModel` to reverse sequences; return accuracy, time and an attention map.

    Deterministic on the CPU: the same arguments give the same numbers on every run (data, weights
    and batch order all come from generators seeded by ``config.seed``; ``num_threads=1`` fixes the
    order of floating-point sums).

    Args:
        config: the task, the model and the training (seed, seq_len, vocab, steps, d_model,
            num_heads, batch_size, lr, …); see :class:`ReversalConfig`. ``None``: its defaults,
            the deck's configuration.
        device: where to train (``"cpu"``, ``"cuda"``; see :func:`engine.device.pick`).
        num_threads: torch CPU threads during training (restored afterwards); ``None`` leaves it.
        example: index of the held-out sequence whose attention is returned.

    Returns:
        A :class:`ReversalResult`.
    """
    cfg = ReversalConfig() if config is None else config
    symbols = Vocabulary(cfg.vocab, specials=())
    generator = torch.Generator().manual_seed(cfg.seed)
    train, held_out = make_data(cfg, generator)
    model = ReversalModel(cfg).to(device)
    optimiser = Adam(model.parameters(), lr=cfg.lr)
    train, held_out = train.to(device), held_out.to(device)
    loss, train_seconds = _fit_reversal(model, optimiser, train, cfg, generator, num_threads=num_threads)
    model.eval()
    return _reversal_result(model, held_out, symbols, cfg, example=example, loss=loss, train_seconds=train_seconds)


def _fit_reversal(model: ReversalModel, optimiser: Adam, train: torch.Tensor, cfg: ReversalConfig,
                  generator: torch.Generator, *, num_threads: int | None) -> tuple[torch.Tensor, float]:
    """``cfg.steps`` Adam steps on the cross-entropy between the model's output and the reversed
    input, each on ``cfg.batch_size`` rows of ``train (N, L)`` drawn with ``generator``.

    Runs on ``num_threads`` torch CPU threads (``None``: as it is), restored afterwards.

    Returns:
        ``(loss of the last batch (a 0-dim tensor), wall-clock seconds of the loop)``.
    """
    threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        start = time.perf_counter()
        for _ in range(cfg.steps):
            batch = train[torch.randint(len(train), (cfg.batch_size,), generator=generator)]  # (B, L)
            logits, _ = model(batch)  # (B, L, vocab)
            loss = F.cross_entropy(logits.flatten(0, 1), batch.flip(-1).flatten())  # target: reversed ids
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        train_seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    return loss, train_seconds


def _reversal_result(model: ReversalModel, held_out: torch.Tensor, symbols: Vocabulary, cfg: ReversalConfig, *,
                     example: int, loss: torch.Tensor, train_seconds: float) -> ReversalResult:
    """The trained ``model``'s exact match on ``held_out (N, L)`` and its attention on the held-out
    sequence ``example``, as a :class:`ReversalResult` (weights ``(L, S)`` averaged over heads,
    ``(H, L, S)`` per head)."""
    accuracy = exact_match(model, held_out)
    ids = held_out[example : example + 1]  # (1, L)
    with torch.no_grad():
        logits, weights = model(ids, need_weights=True)  # (1, L, vocab), (1, H, L, S)
    return ReversalResult(
        tokens=symbols.decode(ids[0].tolist()),
        prediction=symbols.decode(logits[0].argmax(-1).tolist()),
        weights=weights[0].mean(0).cpu().tolist(),  # (L, S)
        head_weights=weights[0].cpu().tolist(),  # (H, L, S)
        accuracy=accuracy,
        train_seconds=train_seconds,
        steps=cfg.steps,
        final_loss=loss.item(),
        config=cfg,
    )


# ---- the same task for a deep stack: what residual connections are for (slide "Bloque Transformer") ----


class DeepReversalModel(nn.Module):
    """``layers`` pre-norm Transformer blocks on token + learned position embeddings, then a readout.
    With ``skip=False`` every block's sub-layers *replace* the residual stream instead of adding to it.

    Shapes:
        ``forward(ids (B, L) long)`` → ``logits (B, L, vocab)``.
    """

    def __init__(self, *, vocab: int, seq_len: int, d_model: int, heads: int, layers: int, skip: bool, seed: int):
        super().__init__()
        self.embed = TokenEmbedding(vocab, d_model, seed=seed)
        self.position = LearnedPositionalEmbedding(seq_len, d_model, std=1.0, seed=seed + 1)
        self.encoder = Encoder(layers, d_model, heads, 4 * d_model, norm_first=True, skip=skip, seed=seed + 2)
        self.readout = nn.Linear(d_model, vocab)
        nn.init.normal_(self.readout.weight, std=d_model**-0.5, generator=torch.Generator().manual_seed(seed + 3))
        nn.init.zeros_(self.readout.bias)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids) + self.position(ids.shape[1])  # (B, L, d_model)
        return self.readout(self.encoder(x))  # (B, L, vocab)


@dataclass
class DeepResult:
    """The training of one :class:`DeepReversalModel`."""

    skip: bool
    layers: int
    losses: list[float]  # cross-entropy of each training batch, in order
    accuracy: float  # exact match on held-out sequences, in [0, 1]
    chance: float  # the loss of a model that guesses: ln(vocab)


def train_deep_reversal(*, skip: bool, layers: int = 8, d_model: int = 32, heads: int = 4, steps: int = 80,
                        seq_len: int = 8, vocab: int = 10, batch_size: int = 32, lr: float = 3e-3, seed: int = 0,
                        device: str | torch.device = "cpu", num_threads: int | None = 1) -> DeepResult:
    """Train a deep stack to reverse sequences of ``vocab`` symbols, with (``skip=True``) or without
    residual connections. The same seed gives both the same data, batches and initial weights, so
    the two runs differ only in the ``x +`` of each sub-layer (He et al. 2016; Vaswani et al. 2017, §5.4).

    Returns:
        A :class:`DeepResult`: the loss of every step and the held-out exact match.
    """
    cfg = ReversalConfig(seq_len=seq_len, vocab=tuple(map(str, range(vocab))), seed=seed, train_size=2048,
                         held_out=256)
    generator = torch.Generator().manual_seed(seed)
    train, held_out = make_data(cfg, generator)
    model = DeepReversalModel(vocab=vocab, seq_len=seq_len, d_model=d_model, heads=heads, layers=layers, skip=skip,
                              seed=seed).to(device)
    optimiser = Adam(model.parameters(), lr=lr)
    train, held_out = train.to(device), held_out.to(device)
    losses = []
    threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        for _ in range(steps):
            batch = train[torch.randint(len(train), (batch_size,), generator=generator)]  # (B, L)
            loss = F.cross_entropy(model(batch).flatten(0, 1), batch.flip(-1).flatten())  # target: reversed ids
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
    finally:
        torch.set_num_threads(threads)
    model.eval()
    with torch.no_grad():
        accuracy = (model(held_out).argmax(-1) == held_out.flip(-1)).all(dim=-1).float().mean().item()
    return DeepResult(skip=skip, layers=layers, losses=losses, accuracy=accuracy, chance=math.log(vocab))


if __name__ == "__main__":
    result = train_reversal()
    print(f"reversal: accuracy {result.accuracy:.3f} on {result.config.held_out} held-out sequences, "
          f"{result.steps} steps in {result.train_seconds:.2f} s; example {''.join(result.tokens)} -> "
          f"{''.join(result.prediction)}")
    for row in result.weights:
        print(" ".join(f"{w:4.2f}" for w in row))
