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
    "es": {"embeddings_title": "similitud media: mismo tema {within:.2f}, temas distintos {between:.2f}",
           "component": "componente principal {n}", "component_short": "CP {n}"},
    "en": {"embeddings_title": "mean similarity: same topic {within:.2f}, different topics {between:.2f}",
           "component": "principal component {n}", "component_short": "PC {n}"},
}


def draw(data: EmbeddingsData, options: EmbeddingsOptions, labels: dict):
    """Each word at its 2-D projection, one colour and marker per topic, labelled beside its marker
    (:func:`place_labels`: off the markers, apart from each other); the mean similarities in the
    title (one line, two where the figure is narrow)."""
    import numpy as np

    from filters.figures.render import before_save, current_page, slide_figure

    page = current_page()
    low = page.inches(options.height) < LOW_INCHES
    # a low figure (40 %) as wide as the text allows (3.2 times its height at most): room for the words
    fig = slide_figure((max(4.6, 3.0 * min(3.2 if low else 2.4, page.width_inches / page.inches(options.height))), 3.0),
                       options.height)
    ax = fig.add_subplot()
    points = np.asarray(data["projection"])
    markers = "osD^vP"
    start, texts = 0, []
    for n, (topic, words) in enumerate(data["topics"].items()):
        group = points[start:start + len(words)]
        dots = ax.scatter(group[:, 0], group[:, 1], marker=markers[n % len(markers)], s=18, label=topic)
        texts += [ax.text(x, y, word, fontsize=7 if low else 8, color=dots.get_facecolor()[0], in_layout=False)
                  for (x, y), word in zip(group, words, strict=True)]
        start += len(words)
    ax.margins(0.12)  # room for the labels of the outermost words inside the axes
    component = labels["component_short" if low else "component"]  # low: «CP 2» beside a short axis
    ax.set_xlabel(component.format(n=1))
    ax.set_ylabel(component.format(n=2))
    if not low and page.width_inches >= NARROW_INCHES:  # low or narrow, the words need the room (numbers: in the JSON)
        ax.set_title(labels["embeddings_title"].format(within=data["within"], between=data["between"]), fontsize=9)
    if page.width_inches < NARROW_INCHES:  # a column: the legend under the plot, which keeps the width
        # three topics a row where they fit (a column of 2.6 in), else two
        fig.legend(handles=ax.collections, loc="outside lower center", ncols=3 if page.width_inches >= 2.6 else 2,
                   frameon=False, handletextpad=0.2, columnspacing=0.8)
    else:  # the figure's, beside the plot: an axes' legend outside it would squeeze the plot to its height
        fig.legend(handles=ax.collections, loc="outside right center", frameon=False, handletextpad=0.2)
    before_save(fig, lambda fig: _lay_out(fig, ax, texts, points))
    return fig


def _lay_out(fig, ax, texts, points) -> None:
    """The figure's last touch at its final size: the title in two lines if one is wider than the
    figure, the other texts fitted (:func:`~filters.figures.render.shrink_to_fit`), then the words
    placed (:func:`place_labels`)."""
    from filters.figures.render import shrink_to_fit, wrap_axis_label

    fig.draw_without_rendering()
    title = ax.title
    if title.get_text() and title.get_window_extent().width > fig.bbox.width - 4 and ", " in title.get_text():
        title.set_text(title.get_text().replace(", ", "\n", 1))
    for text in texts:
        text.set_visible(False)  # placed afterwards: not yet in the way
    wrap_axis_label(ax, "y")  # «componente principal 2» beside a low plot: in two lines
    shrink_to_fit(fig)
    fig.draw_without_rendering()
    fig.set_layout_engine("none")  # the layout frozen: the labels are placed in it, none moves afterwards
    for text in texts:
        text.set_visible(True)
    place_labels(ax, texts, points)


# Under this height (inches) the figure has no title and smaller words: 30 words need its height.
# Narrower than NARROW_INCHES (a column) it has no title either, and its legend goes under the plot.
LOW_INCHES, NARROW_INCHES = 1.9, 3.5


# Where a label may stand around its point: right, left, above, below, the diagonals, then shifted; each
# (dx, dy) a direction (the label's near corner or edge at that side), with its alignment.
_OFFSETS = [((1, 0), "left", "center"), ((-1, 0), "right", "center"), ((0, 1), "center", "bottom"),
            ((0, -1), "center", "top"), ((1, 1), "left", "bottom"), ((-1, 1), "right", "bottom"),
            ((1, -1), "left", "top"), ((-1, -1), "right", "top"),
            # then above or below, the word starting or ending over its point
            ((0, 1), "left", "bottom"), ((0, 1), "right", "bottom"), ((0, -1), "left", "top"), ((0, -1), "right", "top")]


def place_labels(ax, texts, points, *, gap: float = 3.5) -> list[bool]:
    """Put each text of ``texts`` (one per point of ``points``, (n, 2) in data units) beside its
    point: the first of eight places around it (at ``gap`` points from the marker's edge, then
    farther) whose box stays inside the axes, clear of the labels already placed (a point apart)
    and of every marker; failing that, the place inside, clear of the labels and of every marker's
    centre that covers the least of the markers. The labels of crowded points are placed first. A label with no such
    place is hidden (its marker stays: a small figure has no room for every word). Returns, per
    label, whether it was placed."""
    import numpy as np
    from matplotlib.transforms import Bbox

    fig = ax.figure
    fig.draw_without_rendering()
    renderer = fig._get_renderer()  # the one draw_without_rendering used (a plain Figure has no canvas renderer)
    px = fig.dpi / 72  # pixels per point
    centres = ax.transData.transform(points)  # (n, 2) pixels
    radius = 3.0 * px  # a marker of s=18: about 4.2 pt across
    markers = [Bbox.from_bounds(x - radius, y - radius, 2 * radius, 2 * radius) for x, y in centres]
    frame = ax.get_window_extent(renderer)
    placed, free = [], [False] * len(texts)
    # crowded points first: their few free places are not taken by the labels of lonely ones
    near = (np.linalg.norm(centres[:, None] - centres[None], axis=-1) < 30 * px).sum(1)
    for index in sorted(range(len(texts)), key=lambda i: -near[i]):
        text = texts[index]
        best = _best_place(text, renderer, frame, markers, placed, gap=gap, radius=radius / px)
        if best is None:
            text.set_visible(False)
            continue
        transform, ha, va, box = best
        text.set_transform(transform)
        text.set_ha(ha)
        text.set_va(va)
        placed.append(box.padded(1.5 * px))
        free[index] = True
    return free


def _best_place(text, renderer, frame, markers, placed, *, gap: float, radius: float):
    """The best of :data:`_OFFSETS` at ``gap`` to 4.5 times ``gap`` points from a marker
    of ``radius`` points for ``text`` (see :func:`place_labels`): ``(transform, ha, va, box)``, or
    ``None`` when every place is outside ``frame`` or on a label of ``placed``."""
    from matplotlib.transforms import offset_copy

    ax = text.axes
    best, least = None, None
    for distance in (gap, 2 * gap, 3 * gap, 4.5 * gap):  # farther, a word would name another marker
        for (dx, dy), ha, va in _OFFSETS:
            reach = distance + radius
            text.set_transform(offset_copy(ax.transData, fig=ax.figure, x=dx * reach, y=dy * reach, units="points"))
            text.set_ha(ha)
            text.set_va(va)
            box = text.get_window_extent(renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if not inside or any(_overlap(box, other) for other in placed) or \
                    any(box.contains(*marker.get_points().mean(0)) for marker in markers):
                continue  # off the axes, on a word, or hiding a marker's centre
            covered = sum(_overlap(box, marker) for marker in markers)
            if covered == 0:
                return text.get_transform(), ha, va, box
            if least is None or covered < least:
                best, least = (text.get_transform(), ha, va, box), covered
    return best


def _overlap(a, b) -> float:
    """The area two boxes share (0 when apart)."""
    return max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0)) * max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))


KIND = Kind("embeddings", EmbeddingsOptions, compute, output="figure", draw=draw, cost=2, labels=LABELS,
            examples=EXAMPLES, files=("corpus/es.txt", "corpus/en.txt"), captions={
    "es": "Embeddings de {d_model} dimensiones entrenados durante la compilación sobre frases cortas: "
          "las palabras de un mismo tema aparecen en contextos parecidos y quedan juntas.",
    "en": "{d_model}-dimensional embeddings trained as the deck builds, on short sentences: words of one "
          "topic appear in similar contexts and end up together.",
})
