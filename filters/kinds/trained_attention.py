"""``.trained-attention``: attention *learned* during the build — one attention layer of the engine
trained to reverse sequences of symbols; its heatmap is the anti-diagonal.

````markdown
```{.trained-attention #fig-aprendida seed=0 seq_len=8}
```
````
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

from filters.blocks.kind import Kind, Matrix
from filters.blocks.options import FigureOptions, HeatmapOptions, option

# This kind's frame in the starter deck of `attnslides new`, in each language.
from filters.blocks.parsers import as_bool, as_int, as_seed, as_str
from filters.errors import BlockError

EXAMPLES = {
    "es": "# Atención aprendida\n\n```{.trained-attention #aprendida}\n```",
    "en": "# Learned attention\n\n```{.trained-attention #learned}\n```",
}

@dataclass(frozen=True)
class TrainedOptions(FigureOptions, HeatmapOptions):
    """``.trained-attention``: attention *learned* at build time. One attention layer is trained to
    reverse sequences of symbols (seeded, a second or so on one core); the heatmap shows where each
    output position learned to look: the anti-diagonal."""

    seed: int = option(0, as_seed, help="seed of the data, the initial weights and the batch order")
    seq_len: int = option(8, as_int(2, 12), help="length L of the sequences to reverse")
    vocab: str = option("ABCDEFGHIJ", as_str, help="the symbols, one character each")
    steps: int = option(300, as_int(1, 20000), help="training steps (Adam)")
    d_model: int = option(32, as_int(2, 512), help="width of the model")
    heads: int = option(1, as_int(1, 8), help="attention heads")
    per_head: bool = option(False, as_bool, help="one heatmap per head instead of their average")

    def validate(self) -> None:
        super().validate()
        if len(set(self.vocab)) != len(self.vocab) or len(self.vocab) < 2:
            raise BlockError("give at least two different symbols, each once", key="vocab")
        if len(self.vocab) ** self.seq_len < 2 * (4096 + 512):  # engine.toy.make_data's rule, checked before training
            raise BlockError(f"{len(self.vocab)}^{self.seq_len} sequences are too few to train and test on; "
                             "use more symbols or a longer seq_len", key="seq_len")
        if self.d_model % self.heads:
            raise BlockError(f"d_model = {self.d_model} must be divisible by heads = {self.heads}", key="heads")
        if self.per_head and self.heads == 1:
            raise BlockError("per_head shows each head apart: give heads=2 or more", key="per_head")
        work = self.steps * self.seq_len * self.d_model ** 2
        if work > MAX_TRAINING_WORK:  # checked before training: a build is no place for a long run
            raise BlockError(f"steps × seq_len × d_model² = {work:,} is more training than a build should do "
                             f"(at most {MAX_TRAINING_WORK:,}, about a minute on one core): lower steps or d_model",
                             key="steps" if self.steps > 2000 else "d_model")


# The most training a build does for one block, in steps × seq_len × d_model² (the default block,
# 300 × 8 × 32², is 2.5 million: about a second on one core).
MAX_TRAINING_WORK = 150_000_000


class TrainedData(TypedDict):
    """What ``.trained-attention`` computes (``<id>.json``): :class:`engine.toy.ReversalResult`."""

    kind: str
    device: str
    tokens: list[str]  # a held-out input sequence, L symbols
    prediction: list[str]  # the model's output for it
    weights: Matrix  # (L, L), averaged over heads; output positions on rows, input positions on columns
    head_weights: list[Matrix]  # (H, L, L)
    accuracy: float  # exact match on the held-out sequences, in [0, 1]
    steps: int
    final_loss: float
    config: dict[str, Any]  # engine.toy.ReversalConfig


# The words of this figure besides the shared ones (filters.blocks.labels), in every language.
LABELS = {
    "es": {"input": "entrada (key)", "output": "salida predicha (query)",
           "accuracy": "exactitud en {held_out} secuencias no vistas: {percent:.0f} %"},
    "en": {"input": "input (key)", "output": "predicted output (query)",
           "accuracy": "exact match on {held_out} unseen sequences: {percent:.0f}%"},
}


def compute(options: TrainedOptions, device: str = "cpu") -> TrainedData:
    """Train :mod:`engine.toy`'s reversal model and return its attention on a held-out sequence."""
    from engine.device import pick
    from engine.toy import ReversalConfig, train_reversal

    dev = pick(device)
    config = ReversalConfig(seed=options.seed, seq_len=options.seq_len, vocab=options.vocab, steps=options.steps,
                            d_model=options.d_model, num_heads=options.heads)
    result = train_reversal(config, device=dev)
    # the training time is left out: the same numbers must give the same bytes on every build
    data = {key: value for key, value in result.to_dict().items() if key != "train_seconds"}
    return {"kind": "trained-attention", "device": dev.type, **data}


def draw(data: TrainedData, options: TrainedOptions, labels: dict):
    """The learned weights, input symbols on columns and the model's output symbols on rows, titled
    with the held-out exact-match rate."""
    from filters.figures.heatmap import attention_heatmap, heads_figure, heatmap_width, weights_colorbar, widened
    from filters.figures.render import projected_scale, slide_figure

    title = labels["accuracy"].format(held_out=data["config"]["held_out"], percent=100 * data["accuracy"])
    if options.per_head:
        axes_labels = {**labels, "query": labels["output"], "key": labels["input"]}
        return heads_figure(data["head_weights"], data["prediction"], data["tokens"], labels=axes_labels,
                            height=options.height, precision=options.precision, annotate=options.annotate,
                            cmap=options.cmap, title=title)
    fig = slide_figure(widened((4.2, 3.2), options.height, heatmap_width(len(data["tokens"]))), options.height)
    ax = fig.add_subplot()
    fig.suptitle(title, fontsize=10)  # over the whole figure: the axes alone are narrower than it
    heatmap = attention_heatmap(ax, data["weights"], data["prediction"], data["tokens"], precision=options.precision,
                                annotate=options.annotate, cmap=options.cmap, labels=labels,
                                scale=projected_scale(fig, options.height))
    ax.set_xlabel(labels["input"])
    ax.set_ylabel(labels["output"])
    weights_colorbar(fig, heatmap, ax=ax, labels=labels, fraction=0.06, pad=0.03)
    return fig


def across_devices(data: TrainedData) -> dict[str, Any]:
    """Training differs in the last bits between devices; what the slide shows must not: the
    held-out accuracy and where each output position looks."""
    argmax = [max(range(len(row)), key=row.__getitem__) for row in data["weights"]]
    return {"accuracy": data["accuracy"], "argmax": argmax}


KIND = Kind("trained-attention", TrainedOptions, compute, output="figure", draw=draw, cost=10, labels=LABELS,
            across_devices=across_devices, examples=EXAMPLES, captions={
    "es": "Atención aprendida al invertir secuencias de {seq_len} símbolos.",
    "en": "Attention learned by reversing sequences of {seq_len} symbols.",
})
