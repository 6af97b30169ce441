"""``.embeddings``: word embeddings learned during the build (skip-gram) on a small corpus the
project ships, drawn in 2-D: words of one topic end up together.

````markdown
```{.embeddings #fig-embeddings corpus=es}
```
````
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from filters.blocks.kind import Kind, Matrix, as_list
from filters.blocks.options import FigureOptions, option
from filters.blocks.parsers import as_choice, as_int, as_seed, optional

CORPORA = ("es", "en")  # corpus/<name>.txt, beside this file

# This kind's frame in the starter deck of `attnslides new`, in each language.
EXAMPLES = {
    "es": "# Embeddings aprendidos\n\n```{.embeddings #embeddings corpus=es}\n```",
    "en": "# Learned embeddings\n\n```{.embeddings #embeddings corpus=en}\n```",
}


@dataclass(frozen=True)
class EmbeddingsOptions(FigureOptions):
    """``.embeddings``: word vectors trained at build time with skip-gram (Mikolov et al. 2013) on
    a corpus of short sentences about five topics, projected to 2-D: each topic forms its own group.

    The corpus is ``filters/kinds/corpus/<corpus>.txt``; its ``# topic:`` lines name the words shown."""

    # Each corpus in its language: an English deck shows dog, green, animals; a Spanish one perro, verde, animales.
    corpus: str | None = option(None, optional(as_choice(*CORPORA)), by_language={name: name for name in CORPORA},
                                help=f"the corpus: {', '.join(CORPORA)}, or auto: the deck's language")
    d_model: int = option(16, as_int(2, 128), help="width of the word vectors")
    window: int = option(2, as_int(1, 5), help="context: words at most this far from a word")
    steps: int = option(400, as_int(1, 5000), help="training steps (Adam, batches of 256 pairs)")
    seed: int = option(0, as_seed, help="seed of the initial vectors, the batches and the negatives")


class EmbeddingsData(TypedDict):
    """What ``.embeddings`` computes (``<id>.json``)."""

    kind: str
    corpus: str
    sentences: int  # sentences in the corpus
    d_model: int
    window: int
    steps: int
    seed: int
    device: str
    topics: dict[str, list[str]]  # topic → its words, as the corpus names them
    words: list[str]  # the words shown, topic after topic
    vectors: Matrix  # (n, d_model): their learned vectors
    similarity: Matrix  # (n, n): cosine similarity of the vectors
    projection: Matrix  # (n, 2): the vectors on their two principal components
    within: float  # mean cosine similarity of two different words of one topic
    between: float  # mean cosine similarity of two words of different topics
    losses: list[float]  # the training loss of every step


def read_corpus(name: str) -> tuple[list[list[str]], dict[str, list[str]]]:
    """The sentences (tokenized) and the topics of ``corpus/<name>.txt``."""
    from engine.tokens import tokenize

    sentences, topics = [], {}
    for line in (Path(__file__).with_name("corpus") / f"{name}.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            parts = [part.strip() for part in line[1:].split(":")]
            if len(parts) == 3 and parts[0] in ("tema", "topic"):
                topics[parts[1]] = parts[2].split()
        elif line.strip():
            sentences.append(tokenize(line))
    return sentences, topics


def compute(options: EmbeddingsOptions, device: str = "cpu") -> EmbeddingsData:
    """Train skip-gram (:func:`engine.embedding.train_skipgram`) on the corpus, then compare the
    vectors of the topics' words: cosine similarity and a 2-D projection (principal components).
    ``options.corpus`` is set (:meth:`~filters.blocks.options.Options.in_language` fills in the deck's)."""
    import torch
    import torch.nn.functional as F

    from engine.device import pick
    from engine.embedding import train_skipgram

    dev = pick(device)  # trained on the CPU: a few hundred small steps gain nothing on a GPU
    sentences, topics = read_corpus(options.corpus)
    vocab, table, losses = train_skipgram(sentences, d_model=options.d_model, window=options.window,
                                          steps=options.steps, seed=options.seed)
    words = [w for group in topics.values() for w in group]
    vectors = table[[vocab.stoi[w] for w in words]]  # (n, d_model)
    unit = F.normalize(vectors, dim=-1)
    similarity = unit @ unit.T  # (n, n)
    topic = torch.tensor([t for t, group in enumerate(topics.values()) for _ in group])  # (n,)
    same = (topic[:, None] == topic[None, :]) & ~torch.eye(len(words), dtype=torch.bool)  # (n, n)
    centred = vectors - vectors.mean(0)
    _, _, components = torch.linalg.svd(centred, full_matrices=False)  # rows: principal directions
    axes = components[:2] * components[:2].gather(1, components[:2].abs().argmax(1, keepdim=True)).sign()
    return {
        "kind": "embeddings", "corpus": options.corpus, "sentences": len(sentences), "d_model": options.d_model,
        "window": options.window, "steps": options.steps, "seed": options.seed, "device": dev.type,
        "topics": topics, "words": words, "vectors": as_list(vectors), "similarity": as_list(similarity),
        "projection": as_list(centred @ axes.T),
        "within": float(similarity[same].mean()), "between": float(similarity[topic[:, None] != topic[None, :]].mean()),
        "losses": losses,
    }


# The words of this figure besides the shared ones (filters.blocks.labels), in every language.
LABELS = {
    "es": {"embeddings_title": "similitud media: mismo tema {within:.2f}\ntemas distintos {between:.2f}",
           "component": "componente principal {n}"},
    "en": {"embeddings_title": "mean similarity: same topic {within:.2f}\ndifferent topics {between:.2f}",
           "component": "principal component {n}"},
}


def draw(data: EmbeddingsData, options: EmbeddingsOptions, labels: dict):
    """Each word at its 2-D projection, one colour and marker per topic, labelled (the labels moved
    apart by adjustText where words fall close together)."""
    import numpy as np
    from adjustText import adjust_text

    from filters.figures.render import before_save, shrink_to_fit, slide_figure

    fig = slide_figure((4.6, 3.0), options.height)
    ax = fig.add_subplot()
    points = np.asarray(data["projection"])
    markers = "osD^vP"
    start, texts = 0, []
    for n, (topic, words) in enumerate(data["topics"].items()):
        group = points[start:start + len(words)]
        dots = ax.scatter(group[:, 0], group[:, 1], marker=markers[n % len(markers)], s=18, label=topic)
        texts += [ax.text(x, y, word, fontsize=8, color=dots.get_facecolor()[0]) for (x, y), word in
                  zip(group, words, strict=True)]
        start += len(words)
    ax.set_xlabel(labels["component"].format(n=1))
    ax.set_ylabel(labels["component"].format(n=2))
    ax.set_title(labels["embeddings_title"].format(within=data["within"], between=data["between"]), fontsize=9)
    ax.legend(frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5), handletextpad=0.2)  # the style's 9 pt
    fig.draw_without_rendering()  # adjustText moves labels in the final layout
    # a fixed number of iterations, not its default time limit: the same figure on every build
    adjust_text(texts, x=points[:, 0], y=points[:, 1], ax=ax, expand=(1.15, 1.3), iter_lim=300)
    before_save(fig, shrink_to_fit)
    return fig


KIND = Kind("embeddings", EmbeddingsOptions, compute, output="figure", draw=draw, cost=2, labels=LABELS,
            examples=EXAMPLES, files=("corpus/es.txt", "corpus/en.txt"), captions={
    "es": "Embeddings de {d_model} dimensiones entrenados durante la compilación sobre frases cortas: "
          "las palabras de un mismo tema aparecen en contextos parecidos y quedan juntas.",
    "en": "{d_model}-dimensional embeddings trained as the deck builds, on short sentences: words of one "
          "topic appear in similar contexts and end up together.",
})
