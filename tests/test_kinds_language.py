"""Every kind speaks the deck's language: built in ``lang: en`` its data and figure hold no word
that only the Spanish words of the project have, and the other way round (a word of both, such as
"query" or "softmax", may stand).

The words of each language are the ones the project writes: the shared labels
(:mod:`filters.blocks.labels`), each kind's labels and default captions, the notes a ``.run`` block
may add, and the topics and words the ``.embeddings`` corpora show. What a block is given (its
sentence: the pretrained kinds' example is English in both decks) may be in any language, and so
may the option values the data repeats (``corpus: en``, ``encodings: learned``): they are code.
"""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path
from xml.etree import ElementTree

import panflute as pf
import pytest
from conftest import ROOT, live, make_doc, slide

from filters.blocks.labels import LABELS, LANGUAGES
from filters.blocks.options import parse_options
from filters.figures.entry import produce
from filters.figures.sandbox import CUT
from filters.kinds import KINDS
from filters.kinds.run import NOT_RUN

# "feed-forward", "didn't" and "batch_size" (a name in code) whole
_WORD = re.compile(r"\w+(?:[-'’]\w+)*")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")  # "{within:.2f}" is a slot, not a word


def words(text: str) -> set[str]:
    """The words of ``text``, lower case, without format slots (``{n}``), LaTeX commands (``\\sqrt``),
    numbers or single letters (math: $q$, $k$, $o$; also Spanish "y", "o", which no test can tell apart)."""
    found = _WORD.findall(re.sub(r"\\[A-Za-z]+", " ", _PLACEHOLDER.sub(" ", text)))
    return {w.lower() for w in found if len(w) > 1 and not w.replace(".", "").isdigit()}


def corpus_words(lang: str) -> set[str]:
    """The topics and words the ``.embeddings`` corpus of ``lang`` shows (its ``# topic:`` lines)."""
    lines = (ROOT / "filters" / "kinds" / "corpus" / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
    return set().union(*(words(line.split(":", 1)[1]) for line in lines if re.match(r"#\s*(tema|topic)\s*:", line)))


def project_words(lang: str) -> set[str]:
    """Every word the project writes in ``lang`` on a figure, in its data or beside them."""
    texts = [*LABELS[lang].values(), NOT_RUN[lang], CUT[lang]]
    for kind in KINDS.values():
        texts += [*kind.labels.get(lang, {}).values(), kind.captions.get(lang, "")]
    return set().union(*map(words, texts)) | corpus_words(lang)


OWN = {lang: project_words(lang) for lang in LANGUAGES}
# The words each language has that no other has: none of them may show in another language's build.
ONLY = {lang: OWN[lang] - set().union(*(OWN[o] for o in LANGUAGES if o != lang)) for lang in LANGUAGES}


def test_the_word_lists_hold_what_each_language_alone_says():
    """The lists are not empty by accident: they hold words a slide would show."""
    assert {"verde", "perro", "animales", "capa", "cabeza", "peso"} <= ONLY["es"]
    assert {"green", "dog", "animals", "layer", "head", "weight"} <= ONLY["en"]
    assert "query" not in ONLY["es"] | ONLY["en"]  # both decks call it a query


def strings(value, top: bool = True):
    """Every string of a kind's data: values, and the keys of nested mappings (a topic's name);
    the top-level keys are the TypedDict's field names, code rather than text."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if not top:
                yield str(key)
            yield from strings(item, top=False)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings(item, top=False)


def svg_texts(path: Path) -> list[str]:
    """The texts of an SVG that matplotlib wrote with ``svg.fonttype: none`` (our style): each
    ``<text>`` element, its pieces joined (math text is a piece per glyph, indented)."""
    return ["".join(piece.strip(" \n\t") for piece in element.itertext())
            for element in ElementTree.parse(path).iter("{http://www.w3.org/2000/svg}text")]


class Out:
    """What the filter gives a kind's ``write`` (:class:`filters.blocks.kind.Out`), in a language."""

    def __init__(self, lang: str, figures: int):
        self.fmt, self.identifier, self.classes, self.lang, self.figures = "beamer", "x", [], lang, figures

    def figure(self, n=1, *, height=None, caption=None):
        return pf.Para(pf.Str(f"figure {n}"))

    def markdown(self, text):
        return [pf.Str(text)]


def example(kind, lang: str) -> str:
    """The body of the kind's block in the starter deck of ``lang`` (its sentence, a .run block's code)."""
    block = kind.examples[lang].split("```", 2)[1]
    return block.split("\n", 1)[1] if "\n" in block else ""


def option_values(options) -> set[str]:
    """The option values a block's data may repeat (``corpus: en``), as strings."""
    values = set()
    for value in vars(options).values():
        values |= {str(v) for v in value} if isinstance(value, (tuple, list)) else {str(value)}
    return values


def shown(name: str, lang: str, folder: Path) -> tuple[set[str], str]:
    """Build the starter deck's block of kind ``name`` in ``lang`` with the defaults (data, SVG
    figures, and what ``write`` puts on the slide): the words of all its texts but what the block
    was given, and that given text."""
    kind = KINDS[name]
    body = example(kind, lang)
    options = parse_options(kind.options, {}, body)
    data = produce(kind, options, folder, ext="svg", device="cpu", lang=lang)
    given = option_values(options.in_language(lang)) | {name}
    texts = [text for text in strings(data) if text not in given]
    pictures = sorted(folder.glob("figure-*.svg"))
    for picture in pictures:
        texts += svg_texts(picture)
    if kind.write:
        texts += [pf.stringify(block) if isinstance(block, pf.Element) else str(block)
                  for block in _as_list(kind.write(data, options, Out(lang, len(pictures))))]
    return set().union(*map(words, texts)) - words(body), body


def _as_list(blocks) -> list:
    return blocks if isinstance(blocks, list) else [blocks]


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_shows_only_words_of_the_decks_language(name, lang, tmp_path):
    """Issue 22: an English deck's ``.embeddings`` showed verde, perro, animales (its corpus was
    Spanish whatever the deck's ``lang``)."""
    kind = KINDS[name]
    if kind.unavailable():
        pytest.skip(kind.unavailable())
    found, _ = shown(name, lang, tmp_path)
    foreign = {other: sorted(found & ONLY[other]) for other in LANGUAGES if other != lang}
    assert not any(foreign.values()), f".{name} in lang: {lang} shows words of another language: {foreign}"


def test_an_option_that_follows_the_language_keeps_what_the_block_gives():
    """``corpus`` left out follows the deck; given (``corpus=es`` on an English deck), it stays."""
    kind = KINDS["embeddings"]
    assert parse_options(kind.options, {}, "").in_language("en").corpus == "en"
    assert parse_options(kind.options, {}, "").in_language("es").corpus == "es"
    assert parse_options(kind.options, {"corpus": "es"}, "").in_language("en").corpus == "es"
    assert parse_options(kind.options, {"corpus": "auto"}, "").in_language("en").corpus == "en"
    hints = typing.get_type_hints(kind.options)
    assert hints["corpus"] == str | None


@pytest.mark.parametrize(("lang", "given", "corpus"), [("en", {}, "en"), ("es-ES", {}, "es"), ("en", {"corpus": "es"}, "es")])
def test_a_deck_builds_the_corpus_of_its_language_unless_the_block_names_one(lang, given, corpus, build_dirs, figures):
    """Through the filter: the deck's ``lang`` picks the corpus; a block's ``corpus=`` wins."""
    from filters.pandoc.filter import main

    main(make_doc(*slide("E", live("embeddings", ident="e", steps=1, **given)), meta=build_dirs, lang=lang))
    data = json.loads((figures / "e.json").read_text())
    assert data["corpus"] == corpus
    assert set(data["words"]) <= corpus_words(corpus)


def test_an_option_that_follows_the_language_must_name_a_value_in_each():
    from dataclasses import dataclass

    from filters.blocks.kind import Kind
    from filters.blocks.options import FigureOptions, option
    from filters.blocks.parsers import as_str

    @dataclass(frozen=True)
    class Half(FigureOptions):
        """``.half``: a kind whose corpus follows only Spanish decks."""

        corpus: str | None = option(None, as_str, help="the corpus", by_language={"es": "es"})

    embeddings = KINDS["embeddings"]
    half = Kind("half", Half, embeddings.compute, "figure", 1, draw=embeddings.draw, captions={"es": "x", "en": "x"},
                examples=embeddings.examples)
    assert half.problems() == ["option corpus follows the deck's language: its default must be None and by_language "
                               "must give its value in es, en"]
    assert embeddings.problems() == []
