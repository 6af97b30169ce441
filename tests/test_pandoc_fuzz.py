"""Fuzzing the live blocks: Hypothesis writes decks of generated blocks (options in attributes and in
``#|`` lines, bodies, ids, deck settings, output formats) and runs them through the filter in this
process, without LaTeX.

Every case must end in a filtered document or a :class:`BlockError` that names the slide, the block
and (when one option is to blame) a key the case wrote; never another exception; and nothing may be
written outside the case's project folder. Writes are watched with an audit hook (PEP 578,
:func:`sys.addaudithook`), which sees every ``open`` for writing, rename, removal and new folder,
in this process and in the forked workers that run ``.run`` blocks.

Budget: ``ATTNSLIDES_FUZZ_EXAMPLES`` cases (about a minute's worth in ``make test``, with a fixed
seed so CI is repeatable; ``make fuzz`` runs 2,000 fresh ones).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

EXAMPLES = int(os.environ.get("ATTNSLIDES_FUZZ_EXAMPLES", "200"))
RANDOM = os.environ.get("ATTNSLIDES_FUZZ_RANDOM", "") not in ("", "0")  # make fuzz: fresh cases each run

# Values that broke (or could break) a parser, a limit or a path: numbers at the edges, YAML's
# tricks (aliases, tags, flow collections, sexagesimal times), paths, LaTeX, scripts, invisible marks.
JUNK = [
    "", " ", "0", "-1", "1", "2", "3", "1e300", "-1e-300", "nan", "inf", "-inf", "9" * 40, "9" * 5000, "0x10", "1_000",
    "true", "false", "no", "yes", "null", "~", "[]", "{}", "[[1, 2], [3, 4]]", "[[1e300, 1e300]]", "[[true, false]]",
    "[[1, 2], [3]]", "[1, 2]", "[[nan]]", "{a: 1}", "&a [x, x]", "*a", "!!python/object/apply:os.system [ls]",
    "!!binary aGVsbG8=", "../../etc/fig", "/etc", "/dev/null", "/proc/self", "~/x", "a/b", "C:\\x", "..",
    "`\\input{/etc/hostname}`{=latex}", "\\loop\\iftrue\\repeat", "$x^2$", "$\\frac{1}{0", "`code`", "**negrita**",
    "ñandú 日本語 🇪🇸 g̃ İstanbul", "\u200b", "\ufeff", "\u0301", "x" * 3000, "12:30", "#1", "'quoted'", '"unterminated',
    "[" * 300, "a: b: c", "- a\n- b", "%", "&", "{", "}", "100%", "0%", "250%", "5cm", "-3cm", "0cm", "1e9", "3.5", "2,3",
    "0,1,8,9", "1,1", "viridis", "magma", "notacmap", "cuda", "auto", "mps", "es", "en", "sinusoidal,rope",
    "sinusoidal,bogus", "ABC", "A", "el gato", "3,1,2", "0,0", "1 2 3", "None", "0.5", "-0.0", "1e-9", "64", "4096",
]

KEY_JUNK = ["sed", "d-model", "D_MODEL", "Seed", "heads", "caption", "fig-cap", "x", "class", "height", "width",
            "id", "d__model", "-", "_", "ñ", "layers"]
TITLES = ["Auto-atención", "¿Por qué $\\sqrt{d_k}$?", "Slide", "日本語のスライド", "Título con `código`"]
FORMATS = ["beamer", "beamer", "beamer", "latex", "revealjs", "docx", "pptx"]
SETTINGS_KEYS = ["lang", "device", "pdf-engine", "overflow", "execute", "slide-level", "figures-dir", "cache-dir",
                 "bogus"]


def _kinds():
    from filters.kinds import KINDS

    return KINDS


def _example(kind) -> tuple[dict[str, str], str]:
    """The attributes and body of ``kind``'s own example block (a valid start to mutate)."""
    match = re.search(r"```\{([^}]*)\}\n(.*?)```", kind.examples["es"], re.S)
    attributes = {}
    for word in shlex.split(match[1]):
        if "=" in word:
            key, value = word.split("=", 1)
            attributes[key] = value
    return attributes, match[2]


def _good_values(kind) -> list[str]:
    """Each option's default as an attribute would write it (lists comma-joined)."""
    values = []
    for f in dataclasses.fields(kind.options):
        if isinstance(f.default, tuple):
            values.append(",".join(str(v) for v in f.default))
        elif f.default not in (None, ""):
            values.append(str(f.default).lower() if isinstance(f.default, bool) else str(f.default))
    return values


SMALL = [str(n) for n in range(0, 13)] + ["0.5", "1.5", "true", "false"]


@st.composite
def blocks(draw):
    """One live block: ``(kind, identifier, attributes, body)``. Two in three are near a valid block (the
    kind's example with a key or two changed to plausible values), so that figures get computed and
    drawn; the others are hostile (junk keys, values, bodies and ids)."""
    kinds = _kinds()
    kind = kinds[draw(st.sampled_from(sorted(kinds)))]
    fields = [f.name for f in dataclasses.fields(kind.options)]
    if draw(st.integers(0, 2)) > 0:
        attributes, body = _example(kind)
        for name, text in draw(st.lists(st.tuples(st.sampled_from(fields), st.sampled_from(_good_values(kind) + SMALL)),
                                        max_size=2)):
            attributes[name] = text
        return kind.name, draw(st.sampled_from(["", "fig", "fig-2"])), attributes, body
    attributes, body = _example(kind) if draw(st.booleans()) else ({}, "")
    key = st.one_of(st.sampled_from(fields), st.sampled_from(fields).map(lambda k: k.replace("_", "-")),
                    st.sampled_from(KEY_JUNK), st.from_regex(r"[a-z][a-z_-]{0,12}", fullmatch=True))
    value = st.one_of(st.sampled_from(JUNK), st.sampled_from(_good_values(kind) + SMALL),
                      st.integers(-(10**6), 10**6).map(str), st.floats().map(repr), st.text(max_size=30))
    for name, text in draw(st.lists(st.tuples(key, value), max_size=3)):
        attributes[name] = text
    lines = draw(st.lists(st.tuples(key, value), max_size=2))
    prefix = "".join(f"#| {name}: {text}\n" for name, text in lines)
    if draw(st.integers(0, 3)) == 0:
        body = draw(st.one_of(st.sampled_from(JUNK), st.text(max_size=80)))
    identifier = draw(st.one_of(st.just(""), st.sampled_from(["fig", "fig-1", "../x", "/tmp/x", "a b", "x" * 100, ".h"]),
                                st.text(max_size=12)))
    return kind.name, identifier, attributes, prefix + body


@st.composite
def decks(draw):
    """A deck: its format, its language, extra ``attnslides:`` settings and one or two slides."""
    fmt = draw(st.sampled_from(FORMATS))
    lang = draw(st.sampled_from(["es", "es", "en", "fr", ""]))
    extra = {}
    if draw(st.integers(0, 5)) == 0:
        extra[draw(st.sampled_from(SETTINGS_KEYS))] = draw(st.sampled_from(JUNK))
    slides = [(draw(st.sampled_from(TITLES)), draw(blocks())) for _ in range(draw(st.sampled_from([1, 1, 1, 2])))]
    return fmt, lang, extra, slides


def _title_inlines(title: str):
    import panflute as pf
    import pypandoc

    return pf.convert_text(title, pandoc_path=pypandoc.get_pandoc_path())[0].content


def _header(title: str):
    import panflute as pf

    return pf.Header(*_title_inlines(title), level=1)


class WriteWatch:
    """An audit hook that notes every write outside ``root`` (while ``root`` is set) in a log file,
    with :func:`os.write` on a descriptor opened beforehand, so that forked workers' writes are
    noted too and the hook itself raises no event."""

    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    ALLOWED = ("/dev/",)  # /dev/null for subprocesses' output

    def __init__(self, log: Path):
        self.root: str | None = None
        self.log = log
        self.fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        sys.addaudithook(self)

    def _note(self, event: str, path) -> None:
        if isinstance(path, int) or path is None:
            return
        path = os.path.abspath(os.fsdecode(os.fspath(path)))
        if path == self.root or path.startswith(self.root + os.sep) or path.startswith(self.ALLOWED):
            return
        os.write(self.fd, f"{event} {path}\n".encode())

    def __call__(self, event: str, args) -> None:
        if self.root is None:
            return
        if event == "open":
            path, mode, flags = args
            if (mode and set(mode) & set("wax+")) or (mode is None and flags & self.WRITE_FLAGS):
                self._note(event, path)
        elif event in ("os.remove", "os.rmdir", "os.mkdir") and args[-1] is None:  # args[-1]: dir_fd
            self._note(event, args[0])
        elif event in ("os.rename", "os.link", "os.symlink"):
            self._note(event, args[1])
            if event == "os.rename":
                self._note(event, args[0])
        elif event in ("shutil.rmtree", "shutil.copyfile", "shutil.move"):
            self._note(event, args[0] if event == "shutil.rmtree" else args[1])

    def outside(self) -> list[str]:
        return self.log.read_text().splitlines()


_WATCH: WriteWatch | None = None


def _watch() -> WriteWatch:
    global _WATCH  # one hook per process: audit hooks cannot be removed
    if _WATCH is None:
        _WATCH = WriteWatch(Path(tempfile.mkdtemp(prefix="attnslides-fuzz-")) / "outside.log")
    return _WATCH


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """One project folder for every case (its cache is shared, as a lecturer's is between builds)."""
    return tmp_path_factory.mktemp("fuzz-project")


def _check_error(error, kind_names: set[str], titles: set[str], keys: set[str], written: str) -> None:
    from filters.errors import BlockErrors

    for e in error.errors if isinstance(error, BlockErrors) else [error]:
        assert e.where is not None, f"an error that names no place: {e}"
        assert e.where.slide in titles | {"(metadata)"}, f"names no slide of the deck: {e}"
        if e.where.slide != "(metadata)":
            assert any(e.where.block.startswith(f".{name}") for name in kind_names) or "code block" in e.where.block, \
                f"names no block: {e}"
        if e.key is not None:
            assert e.key.replace("-", "_") in keys or e.key in written, f"blames a key the case did not write: {e}"
        assert str(e).startswith("attnslides: "), e


@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not RANDOM, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(case=decks())
def test_every_generated_block_ends_in_a_result_or_a_located_error(project, case):
    import panflute as pf

    from filters.blocks.settings import Settings
    from filters.errors import BlockError, BlockErrors
    from filters.pandoc.document import plain_text
    from filters.pandoc.filter import main

    fmt, lang, extra, slides = case
    blocks_, titles, kind_names, keys = [], set(), set(), {"id", "sentence", "code"}
    keys |= {f.name for f in dataclasses.fields(Settings)} | {k.replace("-", "_") for k in extra}
    for title, (kind, identifier, attributes, body) in slides:
        header = _header(title)
        titles.add(plain_text(header))
        kind_names.add(kind)
        keys |= {f.name for f in dataclasses.fields(_kinds()[kind].options)} | {k.replace("-", "_") for k in attributes}
        keys |= {m.replace("-", "_") for m in re.findall(r"^#\|\s*([^:\n]*)", body, re.M)}
        blocks_ += [header, pf.CodeBlock(body, identifier=identifier, classes=[kind], attributes=attributes)]
    metadata = {"title": "Deck de prueba", "attnslides": {"figures-dir": "build/figures", "cache-dir": "build/cache", "jobs": 1,
                                                          **extra}}
    if lang:
        metadata["lang"] = lang
    doc = pf.Doc(*blocks_, metadata=metadata, format=fmt)

    watch, here = _watch(), os.getcwd()
    os.chdir(project)
    watch.root = str(project)
    try:
        main(doc)
        event("a result")
    except BlockError as error:
        event(f"an error ({'several' if isinstance(error, BlockErrors) else error.key or 'no key'})")
        _check_error(error, kind_names, titles, keys, repr(case))
    finally:
        watch.root = None
        os.chdir(here)
    outside = watch.outside()
    assert not outside, f"written outside the project: {outside[:5]}"
