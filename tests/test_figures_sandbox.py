"""``.run`` blocks: a lecturer's own code, run at build time. One deck in tests/decks/ per behaviour,
read by pandoc and filtered in this process, as ``attnslides build`` does."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from hashlib import sha256
from pathlib import Path

import numpy as np
import panflute as pf
import pytest
from conftest import DECKS, LECTURES, ROOT, figures_of, filter_deck, processes_with_argument

from filters.errors import BlockError


def only(doc, cls):
    found = []
    doc.walk(lambda e, d: found.append(e) if isinstance(e, cls) else None)
    return found


def deck_line(deck, text: str) -> int:
    """The line of ``deck`` (from 1) that holds ``text``: where a message must point."""
    return next(n for n, line in enumerate(deck.read_text().splitlines(), start=1) if text in line)


def test_two_figures_with_their_captions_text_data_and_print_in_order(build_dirs, monkeypatch):
    deck = DECKS / "run-two-figures.md"
    doc = filter_deck(deck, build_dirs, monkeypatch)
    first, second = only(doc, pf.Figure)
    assert pf.stringify(first.caption) == "La primera: una recta."
    assert pf.stringify(second.caption) == "La segunda: una parábola."
    assert (first.identifier, second.identifier) == ("dos-1", "dos-2")
    folder = figures_of(deck, build_dirs)
    assert sorted(p.name for p in folder.iterdir()) == ["dos-1.pdf", "dos-2.pdf", "dos.json"]
    # what the code made, in the order it made it
    order = [type(e).__name__ for e in doc.content if not isinstance(e, pf.Header)]
    assert order == ["Figure", "Para", "Figure", "CodeBlock"]
    assert pf.stringify(doc.content[2]).strip() == "Entre las dos figuras."
    assert only(doc, pf.CodeBlock)[0].text == "listo" and "output" in only(doc, pf.CodeBlock)[0].classes
    data = json.loads((folder / "dos.json").read_text())
    np.testing.assert_allclose(data["data"]["xs"], np.linspace(-1, 1, 21))
    assert data["data"]["nota"] == "hecho" and data["figures"] == 2


def test_a_matrix_as_latex_and_the_code_shown_with_echo(build_dirs, monkeypatch):
    doc = filter_deck(DECKS / "run-matrix.md", build_dirs, monkeypatch)
    code, para = [e for e in doc.content if not isinstance(e, pf.Header)]
    assert code.classes == ["python"] and code.text.startswith("scores = torch.tensor(")
    (math,) = only(para, pf.Math)
    scores = np.array([[0.0, 1.0, 2.0], [2.0, 0.0, -1.0]])
    softmax = np.exp(scores) / np.exp(scores).sum(1, keepdims=True)
    assert math.format == "DisplayMath" and math.text.startswith("A = \\begin{bmatrix}")
    assert [f"{x:.3f}" for x in softmax.ravel()] == [n for n in math.text.replace("\\\\", "&").split("}")[1]
                                                        .split("\\end")[0].replace(" ", "").split("&")]


def test_an_exception_names_the_decks_line_and_keeps_only_the_blocks_frames(build_dirs, monkeypatch):
    deck = DECKS / "run-raises.md"
    with pytest.raises(BlockError) as info:
        filter_deck(deck, build_dirs, monkeypatch)
    message = str(info.value)
    assert f"line {deck_line(deck, 'total = dividir(1, 0)')} of {deck}" in message
    assert f"line {deck_line(deck, 'return a / b')} of {deck}, in dividir" in message
    assert "ZeroDivisionError: division by zero" in message and "«El bloque que falla»" in message
    assert "filters/" not in message and "Traceback" in message, "only the block's own frames"
    assert not (figures_of(deck, build_dirs)).exists(), "nothing half-written"


def test_a_block_past_its_timeout_is_stopped_and_says_where(build_dirs, monkeypatch):
    deck = DECKS / "run-timeout.md"
    with pytest.raises(BlockError) as info:
        filter_deck(deck, build_dirs, monkeypatch)
    message = str(info.value)
    assert "option 'timeout'" in message and "stopped after 1 s" in message
    assert any(f"line {deck_line(deck, text)} of" in message for text in ("while True:", "x += 1"))


def test_no_exec_shows_the_code_of_a_block_without_a_cached_result(build_dirs, monkeypatch):
    deck = DECKS / "run-not-executed.md"
    monkeypatch.setenv("ATTNSLIDES_EXECUTE", "0")
    doc = filter_deck(deck, build_dirs, monkeypatch)  # the code would raise SystemExit if it ran
    code, note = [e for e in doc.content if not isinstance(e, pf.Header)]
    assert code.text == 'raise SystemExit("ran despite --no-exec")'
    assert "--no-exec" in pf.stringify(note) and not only(doc, pf.Figure)
    monkeypatch.delenv("ATTNSLIDES_EXECUTE")
    doc = filter_deck(deck, build_dirs, monkeypatch, execute=False)  # the metadata's way
    assert "--no-exec" in pf.stringify(doc)


def test_no_exec_uses_a_cached_result(build_dirs, monkeypatch):
    deck = DECKS / "run-two-figures.md"
    filter_deck(deck, build_dirs, monkeypatch)
    monkeypatch.setenv("ATTNSLIDES_EXECUTE", "0")
    doc = filter_deck(deck, build_dirs, monkeypatch)
    assert len(only(doc, pf.Figure)) == 2 and "--no-exec" not in pf.stringify(doc)


def test_an_unchanged_block_never_runs_again(build_dirs, monkeypatch, tmp_path):
    deck = tmp_path / "cuenta.md"
    marker = tmp_path / "runs.txt"
    deck.write_text("---\ntitle: Cuenta\nlang: es\n---\n\n# Cuenta\n\n```{.python .run #cuenta}\n"
                    f"with open({str(marker)!r}, 'a') as f:\n    f.write('x')\nslide.text('hola')\n```\n")
    for _ in range(2):
        filter_deck(deck, build_dirs, monkeypatch, caption="")
    assert marker.read_text() == "x"
    deck.write_text(deck.read_text().replace("'hola'", "'adiós'"))
    filter_deck(deck, build_dirs, monkeypatch)
    assert marker.read_text() == "xx", "a changed block runs again"


def test_fig_cap_must_match_the_figures(build_dirs, monkeypatch, tmp_path):
    deck = tmp_path / "caps.md"
    deck.write_text("---\ntitle: Caps\nlang: es\n---\n\n# Caps\n\n```{.python .run}\n#| fig-cap: [\"a\", \"b\"]\n"
                    "plt.figure()\n```\n")
    with pytest.raises(BlockError, match="fig-cap gives 2 captions, but the code drew 1"):
        filter_deck(deck, build_dirs, monkeypatch)


def test_the_unknown_class_warning_names_the_slide_and_the_closest_kind(build_dirs, monkeypatch, capfd):
    doc = filter_deck(DECKS / "unknown-class.md", build_dirs, monkeypatch)
    err = capfd.readouterr().err
    assert "warning" in err and "«Una clase que no es nada»" in err and "'.heatmap'" in err
    assert "the closest kind is '.multihead'" in err
    assert "python" not in err, "a language pandoc highlights is no warning"
    assert len(only(doc, pf.CodeBlock)) == 2, "both stay code listings"


def deck_of(tmp_path, *codes, options=""):
    """A deck with one .run block per code, each on its own slide."""
    blocks = "\n\n".join(f"# Bloque {n}\n\n```{{.python .run #b{n} {options}}}\n{code}\n```"
                         for n, code in enumerate(codes, start=1))
    deck = tmp_path / "bloques.md"
    deck.write_text(f"---\ntitle: Bloques\nlang: es\n---\n\n{blocks}\n")
    return deck


@pytest.mark.parametrize("code, said", [("import sys\nsys.exit(2)", "called exit()"),
                                        ("raise KeyboardInterrupt", "KeyboardInterrupt"),
                                        ("import os\nos._exit(0)", "its process ended with exit code 0")])
@pytest.mark.parametrize("blocks", [1, 2])
def test_a_block_that_exits_is_an_error_naming_it_never_a_hang(build_dirs, monkeypatch, tmp_path, code, said, blocks):
    """Regression: sys.exit or KeyboardInterrupt in a block left the pool waiting forever; os._exit
    gave pandoc a broken stream and no message."""
    deck = deck_of(tmp_path, code, *(["x = 1"] if blocks == 2 else []))
    with pytest.raises(BlockError) as info:
        filter_deck(deck, build_dirs, monkeypatch)
    assert said in str(info.value) and "#b1" in str(info.value) and "«Bloque 1»" in str(info.value)


def test_output_to_descriptor_1_is_shown_and_never_reaches_pandocs_stream(build_dirs, monkeypatch, tmp_path):
    """Regression: os.system("echo …") wrote into the filter's stdout, pandoc's JSON stream."""
    deck = deck_of(tmp_path, 'import os\nprint("desde python")\nos.system("echo desde-un-programa")\n'
                             'os.write(1, b"desde-c\\n")')
    doc = filter_deck(deck, build_dirs, monkeypatch)
    texts = [e.text for e in only(doc, pf.CodeBlock)]
    assert texts[0] == "desde python" and "desde-un-programa" in texts[-1] and "desde-c" in texts[-1]


def test_a_blocks_changes_to_torch_stay_in_its_own_process(build_dirs, monkeypatch, tmp_path):
    """Regression: a block that replaced torch.softmax changed the .attention figures after it."""
    clean = tmp_path / "limpio.md"
    clean.write_text("---\ntitle: Limpio\nlang: es\n---\n\n# A\n\n```{.attention #a}\nel gato come\n```\n")
    poisoned = tmp_path / "veneno.md"
    poisoned.write_text("---\ntitle: Veneno\nlang: es\n---\n\n# R\n\n```{.python .run #r}\n"
                        "torch.softmax = lambda x, dim=-1, **k: torch.ones_like(x) / x.shape[dim]\n```\n\n"
                        "# A\n\n```{.attention #a seed=0}\nel gato come\n```\n")
    filter_deck(clean, {**build_dirs, "cache-dir": "build/cache-1"}, monkeypatch)
    filter_deck(poisoned, {**build_dirs, "cache-dir": "build/cache-2"}, monkeypatch)
    weights = [json.loads((figures_of(d, build_dirs) / "a.json").read_text())["weights"] for d in (clean, poisoned)]
    assert weights[0] == weights[1] and weights[0][0][0] != pytest.approx(1 / 3)


@pytest.mark.parametrize("code", ["for _ in range(10**12):\n    try:\n        sum(range(1000))\n    except:\n        pass",
                                  "torch.set_num_threads(1)\ntorch.linalg.svd(torch.randn(7000, 7000))"],
                         ids=["bare-except", "inside-c"])
def test_the_timeout_stops_a_block_that_resists_it(build_dirs, monkeypatch, tmp_path, code):
    """Regression: a bare except swallowed the timer, and a long C routine ran to its end."""
    import time

    from filters.workers.limits import KILL_GRACE_S

    deck = deck_of(tmp_path, code, options="timeout=1")
    start = time.monotonic()
    with pytest.raises(BlockError, match="stopped after 1 s"):
        filter_deck(deck, build_dirs, monkeypatch)
    assert time.monotonic() - start < 1 + KILL_GRACE_S + 20


def test_the_timeout_counts_the_block_not_the_imports(build_dirs, monkeypatch, tmp_path):
    """Regression: a one-line block with timeout=1 ran past it while torch and matplotlib loaded."""
    doc = filter_deck(deck_of(tmp_path, 'print("hecho")', options="timeout=1"), build_dirs, monkeypatch)
    assert only(doc, pf.CodeBlock)[0].text == "hecho"


def test_megabytes_printed_finish_and_the_slide_says_what_was_cut(build_dirs, monkeypatch, tmp_path):
    """Regression: appending printed output was quadratic, so a block printing 5 MB ran into its time
    limit; now it is kept up to a cap, and the slide says how much was printed and how much is shown."""
    from filters.figures.sandbox import KEPT_LINES

    deck = deck_of(tmp_path, 'for i in range(500_000):\n    print(f"{i:9d}")',  # 10 characters a line: 5 MB
                   'import os\nos.write(1, b"yyyy\\n" * 600_000)')  # 3 MB, by the process itself
    doc = filter_deck(deck, build_dirs, monkeypatch)
    printed = [e.text for e in only(doc, pf.CodeBlock)]
    lines = printed[0].split("\n")
    assert len(lines) == KEPT_LINES and lines[0] == f"{0:9d}" and lines[-1] == f"{KEPT_LINES - 1:9d}"
    notes = [pf.stringify(e).strip() for e in only(doc, pf.Emph)]
    assert notes[0] == f"(Salida recortada: el bloque imprimió 5 000 000 caracteres; se muestran los primeros " \
                       f"{KEPT_LINES * 10:,}.)".replace(",", " ")
    assert printed[1] == "\n".join(["yyyy"] * KEPT_LINES) and "3 000 000 caracteres" in notes[1]


class _Counted(str):
    """A printed chunk that counts the characters copied when text is concatenated to it."""

    copied = 0

    def __radd__(self, other):
        _Counted.copied += len(other) + len(self)
        return _Counted(str.__add__(other, self))


def test_printed_output_is_captured_in_linear_time():
    """Regression: each line printed copied everything printed before it (``str +=``)."""
    from filters.figures.sandbox import Slide, _Kept, _Printed, _without_marker

    slide = Slide(device=None, lang="en", height="60%")
    out = _Printed(slide, _Kept(chars=10**9, lines=10**9))
    _Counted.copied = 0
    for i in range(10_000):
        out.write(_Counted(f"{i:9d}\n"))
    (piece,) = slide.outputs
    assert _without_marker(piece)["printed"] == "".join(f"{i:9d}\n" for i in range(10_000)).rstrip("\n")
    assert _Counted.copied <= 2 * 10 * 10_000, "each character copied a bounded number of times"


def test_the_kept_output_is_cut_at_its_character_and_line_caps():
    from filters.figures.sandbox import _Kept

    kept = _Kept(chars=10, lines=3)
    assert [kept.take(t) for t in ("abc", "defghijk", "lm", "")] == ["abc", "defghij", "", ""]
    assert (kept.total, kept.kept) == (13, 10)
    assert kept.note("en") == {"text": "_(Output cut: the block printed 13 characters; the first 10 are shown.)_"}
    lines = _Kept(chars=100, lines=3)
    assert [lines.take(t) for t in ("a\nb\n", "c\nd\ne", "f")] == ["a\nb\n", "c\n", ""]
    assert _Kept().note("es") is None


def printed_by(deck, build_dirs, monkeypatch) -> list[str]:
    """What the deck's .run blocks print, built through the filter as ``attnslides build`` does."""
    return [e.text for e in only(filter_deck(deck, build_dirs, monkeypatch), pf.CodeBlock)]


@pytest.mark.parametrize("place", [".", "clases"])
def test_a_block_runs_again_when_a_data_file_it_reads_changes(build_dirs, monkeypatch, tmp_path, place):
    """Regression (knitr#731's bug): a block that read a data file beside its deck kept its cached
    result after the file changed. The deck in the project's folder, or in a folder of it: the
    code runs in the deck's folder."""
    folder = tmp_path / place
    folder.mkdir(exist_ok=True)
    runs = tmp_path / "veces.txt"
    (folder / "datos.txt").write_text("primera versión")
    deck = folder / "datos.md"
    deck.write_text("---\ntitle: Datos\nlang: es\n---\n\n# Datos\n\n```{.python .run #d}\n"
                    f"with open({str(runs)!r}, 'a') as f:\n    f.write('x')\n"
                    "print(open('datos.txt').read())\n```\n")
    assert printed_by(deck, build_dirs, monkeypatch) == ["primera versión"]
    assert printed_by(deck, build_dirs, monkeypatch) == ["primera versión"] and runs.read_text() == "x", \
        "unchanged: the cached result"
    (folder / "datos.txt").write_text("segunda versión")
    assert printed_by(deck, build_dirs, monkeypatch) == ["segunda versión"] and runs.read_text() == "xx"
    (folder / "datos.txt").unlink()
    with pytest.raises(BlockError, match="FileNotFoundError"):
        filter_deck(deck, build_dirs, monkeypatch)


def test_a_block_runs_again_when_a_module_it_imports_changes(build_dirs, monkeypatch, tmp_path):
    """A helper module beside the deck: imported by its name, and the block runs again when it
    changes, even edited twice in one second with one size (Python's __pycache__ would hold the old
    code)."""
    (tmp_path / "ayuda.py").write_text("from otra import VALOR\n")  # a module it imports, too
    (tmp_path / "otra.py").write_text("VALOR = 1\n")
    deck = deck_of(tmp_path, "import ayuda\nprint(ayuda.VALOR)")
    assert printed_by(deck, build_dirs, monkeypatch) == ["1"]
    (tmp_path / "otra.py").write_text("VALOR = 2\n")
    assert printed_by(deck, build_dirs, monkeypatch) == ["2"]
    assert not (tmp_path / "__pycache__").exists()


def test_one_block_beside_two_decks_reads_each_decks_own_file(build_dirs, monkeypatch, tmp_path):
    """The same code beside two decks is two results: it runs in each deck's folder."""
    decks = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "datos.txt").write_text(f"datos de {name}")
        decks.append(deck_of(tmp_path / name, "print(open('datos.txt').read())"))
    assert [printed_by(deck, build_dirs, monkeypatch) for deck in decks] == [["datos de a"], ["datos de b"]]


def test_a_record_of_files_outside_the_project_is_not_trusted(build_dirs, monkeypatch, tmp_path, capfd):
    from filters.cache.store import Cache

    (tmp_path / "datos.txt").write_text("uno")
    deck = deck_of(tmp_path, "print(open('datos.txt').read())")
    printed_by(deck, build_dirs, monkeypatch)
    (key,) = Cache("build/cache").keys()
    entry = Path("build/cache") / key
    assert json.loads((entry / "depends.json").read_text()) == {"datos.txt": sha256(b"uno").hexdigest()}
    # an edited record (its checksums made to match) that names a file outside the project
    (entry / "depends.json").write_text(json.dumps({"../../etc/passwd": None}))
    record = json.loads((entry / "sha256.json").read_text())
    record["depends.json"] = sha256((entry / "depends.json").read_bytes()).hexdigest()
    (entry / "sha256.json").write_text(json.dumps(record))
    capfd.readouterr()
    assert printed_by(deck, build_dirs, monkeypatch) == ["uno"]
    assert "names a file outside the project" in capfd.readouterr().err
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")
def test_what_a_block_leaves_running_ends_with_it(build_dirs, monkeypatch, tmp_path):
    """Regression: a daemon a .run block started (double fork, its own session) outlived the block and
    the build, and kept the build's forkserver alive."""
    import os
    import random
    import signal

    argument = f"{8000 + random.randrange(1000)}.{random.randrange(10**6):06d}"  # seconds no other sleep has
    code = (f'import os\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        os.execvp("sleep", '
            f'["sleep", "{argument}"])\n    os._exit(0)\nos.wait()\nprint("hecho")')
    try:
        doc = filter_deck(deck_of(tmp_path, code), build_dirs, monkeypatch)
        assert only(doc, pf.CodeBlock)[0].text == "hecho"
        assert processes_with_argument(argument) == []
    finally:
        for pid in processes_with_argument(argument):
            os.kill(pid, signal.SIGKILL)


def test_a_block_past_its_memory_is_stopped_and_names_the_option(build_dirs, monkeypatch, tmp_path):
    deck = deck_of(tmp_path, "x = 1\nblob = bytearray(2 << 30)", options="memory=256MB")
    with pytest.raises(BlockError) as caught:
        filter_deck(deck, build_dirs, monkeypatch)
    message = str(caught.value)
    assert "option 'memory'" in message and "ran out of memory" in message
    assert "0.25 GB" in message and f"line {deck_line(deck, 'blob = bytearray')}" in message


@pytest.mark.parametrize(("given", "gigabytes"), [("4GB", 4.0), ("512MB", 0.5), ("1.5 GiB", 1.5), (8, 8.0), ("1TB", 1024.0)])
def test_a_blocks_memory_is_read_in_gigabytes(given, gigabytes):
    from filters.blocks.parsers import as_gigabytes

    assert as_gigabytes(given) == gigabytes


@pytest.mark.parametrize("given", ["lots", "4 parsecs", "0", "-1GB"])
def test_a_memory_that_is_no_amount_is_refused(given):
    from filters.blocks.parsers import as_gigabytes

    with pytest.raises(ValueError, match="memory"):
        as_gigabytes(given)


@pytest.mark.parametrize(("code", "said"), [
    ('plt.plot([1, 2])\nplt.xlabel("$d_\\text{model}$")', "figure 1's x-axis label"),
    ('plt.plot([1, 2], label="$\\beta$")\nplt.legend()', "figure 1's legend entry"),
    ('plt.figure()\nplt.plot([1, 2])\nplt.title("$\\frac{1}{2}$")', "figure 2's title"),
    ('plt.plot([1, 2])\nplt.annotate("$x_\\nu$", (0, 1))', "figure 1's text"),
    ('slide.text("$\\alpha$")', "slide.text"),
])
def test_a_control_character_in_a_figures_text_is_an_error_naming_block_and_text(build_dirs, monkeypatch, tmp_path,
                                                                                   code, said):
    """Regression: plt.xlabel("$d_\\text{model}$") (a tab in a plain Python string) drew "d_extmodel"."""
    deck = deck_of(tmp_path, "plt.figure()\n" + code)
    with pytest.raises(BlockError) as info:
        filter_deck(deck, build_dirs, monkeypatch)
    text = str(info.value)
    assert said in text and "#b1" in text and "«Bloque 1»" in text and 'r"..."' in text
    assert not list(figures_of(deck, build_dirs).glob("*.pdf")), "nothing half-written"


def _run_blocks(deck: Path):
    """The ``.run`` blocks of ``deck`` (:class:`filters.pandoc.scan.ScannedBlock`)."""
    from filters.pandoc.scan import live_blocks

    return [block for block in live_blocks(deck.read_text()) if block.kind == "run"]


@pytest.mark.parametrize("deck", LECTURES, ids=lambda p: p.name)
def test_no_shipped_run_block_writes_a_control_character_in_a_string(deck):
    """Regression: transformers-2's plt.xlabel("$d_{\\text{model}}$") drew "d_extmodel"."""
    from filters.blocks.parsers import escape_problem

    blocks = _run_blocks(deck)
    for block in blocks:
        for node in ast.walk(ast.parse(block.body)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert escape_problem(node.value) is None, f"{deck.name}:{block.line}: {node.value!r}"


def test_transformers_2_block_figure_has_its_d_model_label(build_dirs, monkeypatch, tmp_path):
    (block,) = [b for b in _run_blocks(ROOT / "slides" / "transformers-2.md") if b.identifier == "fig-parametros"]
    deck = tmp_path / "parametros.md"
    deck.write_text(f"---\ntitle: P\nlang: es\n---\n\n# P\n\n```{{.python .run #fig-parametros}}\n{block.body}\n```\n")
    filter_deck(deck, build_dirs, monkeypatch)
    pdf = next(figures_of(deck, build_dirs).glob("*.pdf"))
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "model" in text and "ext" not in text.replace("text", "")
