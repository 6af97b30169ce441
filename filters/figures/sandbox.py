"""The sandbox of ``.run`` blocks: a lecturer's own Python, run with the engine while the deck builds.

A ``.run`` block's code runs in a worker like any figure, with these names already there:

* ``engine`` — the attention engine, every module imported (``engine.attention.MultiHeadAttention``);
* ``torch``, ``np`` (numpy), ``plt`` (matplotlib.pyplot, in the deck's style);
* ``slide`` — a :class:`Slide`: what the block puts on its slide besides its figures.

torch, numpy and Python's ``random`` are seeded first (the block's ``seed``, default 0), so a block
gives the same slide on every build. Every matplotlib figure still open when the code ends becomes
a figure on the slide, in the order they were created; what the code prints appears as text. An
exception stops the build with the line of the deck that raised it and the block's own frames of
the traceback (:class:`filters.errors.BlockError`).

The code runs in its deck's folder, which is first on ``sys.path``: ``open("datos.csv")`` and
``import ayuda`` find the files beside the deck. The files inside the project it opens to read and
the modules of the project it imports are recorded with their SHA-256 in the entry's
``depends.json`` (:data:`filters.figures.entry.DEPENDS`): when one changes, the cached result is no
longer trusted and the block runs again (knitr's ``cache.extra``, found without being asked).
A file a C library opens by itself, or a folder the code lists, is not seen.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import linecache
import math
import os
import random
import re
import sys
import tempfile
import traceback
import warnings
from pathlib import Path
from typing import Any

from filters.blocks.parsers import BUILD_FOLDER, escape_problem
from filters.errors import BlockError, JobOutOfMemory, JobTimeout, tracebacks_wanted
from filters.figures.entry import DEPENDS
from filters.util.files import file_sha256, write_atomic

CODE_WIDTH = 50  # characters a printed line may take on a slide (53 fit)

# The file name the block's code is compiled under: its frames are the block's own.
CODE_FILE = "<.run block>"


def _array(values):
    """A tensor, array or nested list as a float numpy array (on the CPU)."""
    import numpy as np

    if hasattr(values, "detach"):
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=float)


def _jsonable(value):
    """``value`` with tensors and arrays turned into (nested) lists, numpy scalars into numbers."""
    if hasattr(value, "detach") or type(value).__module__ == "numpy":
        value = _array(value)
        return value.tolist() if value.ndim else float(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


class Slide:
    """The ``slide`` object of a ``.run`` block: what the block puts on its slide besides its figures.

    Outputs appear in the order the code makes them, figures included (a figure is placed where it
    was created). Attributes: ``device`` (the ``torch.device`` the build computes on; move your
    tensors there to use a GPU) and ``lang`` (the deck's language, ``"es"`` or ``"en"``).
    """

    def __init__(self, *, device, lang: str, height: str):
        self.device, self.lang, self._height = device, lang, height
        self.outputs: list[dict[str, Any]] = []
        self.values: dict[str, Any] = {}

    @property
    def size(self) -> tuple[float, float]:
        """The room a figure of this block has on the slide, in inches: (the text width, the block's
        height). Figures are drawn at the size they are placed (their proportions kept); a figure
        made this size and laid out in points (text placed by hand) is placed as drawn."""
        from filters.figures.render import current_page

        page = current_page()
        return page.width_inches, page.inches(self._height)

    def _figures_so_far(self) -> int:
        import matplotlib.pyplot as plt

        return max(plt.get_fignums(), default=0)

    def _put(self, **piece) -> None:
        self.outputs.append({**piece, "after_figure": self._figures_so_far()})

    def matrix(self, values, *, precision: int = 2, name: str | None = None) -> None:
        """Show a vector or a matrix (tensor, array or nested list) as LaTeX, e.g. ``A = [...]``.

        Args:
            values: shape ``(n,)`` (shown as a row) or ``(rows, cols)``.
            precision: decimals of each entry.
            name: what it is called on the slide, as LaTeX (``"A"``, ``"W_Q"``); none: just the matrix.

        Raises:
            ValueError: for an array of another rank, or of more than 12 × 12 entries.
        """
        from filters.figures.matrices import bmatrix

        array = _array(values)
        if array.ndim == 1:
            array = array[None, :]
        if array.ndim != 2 or max(array.shape) > 12:
            raise ValueError(f"slide.matrix shows a vector or a matrix of at most 12 × 12, got shape {array.shape}")
        latex = bmatrix(array.tolist(), precision)
        self._put(math=f"{name} = {latex}" if name else latex)

    def math(self, latex: str) -> None:
        """Show a line of display math (LaTeX, without ``$``).

        Raises:
            ValueError: when it holds a control character (``"\\frac"`` read as a form feed)."""
        _no_escapes("slide.math", str(latex), math=True)
        self._put(math=str(latex))

    def text(self, markdown: str) -> None:
        """Show a short text (Markdown: ``*emphasis*``, ``$x$``).

        Raises:
            ValueError: when it holds a control character (``"$\\text{…}$"`` read as a tab)."""
        _no_escapes("slide.text", str(markdown))
        self._put(text=str(markdown))

    def heatmap(self, weights, queries, keys=None, *, title: str | None = None, titles: list[str] | None = None,
                precision: int = 2, annotate: bool | None = None, cmap: str = "viridis"):
        """A heatmap of attention weights in the deck's style (queries on rows, keys on columns),
        as the ``.attention`` kind draws it; it appears where it is made. Several matrices (a
        stack of shape ``(P, L, S)``, e.g. one per head) are drawn side by side on one colour scale.

        Args:
            weights: shape ``(L, S)`` or ``(P, L, S)``, values in [0, 1].
            queries: L row labels; keys: S column labels (default: the queries).
            title: above the heatmap(s); titles: one per panel of a stack.
            precision, annotate, cmap: as in ``.attention``.

        Returns:
            The matplotlib figure.

        Raises:
            ValueError: when the shape does not match the labels.
        """
        import matplotlib.pyplot as plt

        from filters.blocks.labels import LABELS
        from filters.figures.heatmap import attention_heatmap, heads_figure, heatmap_width, weights_colorbar, widened
        from filters.figures.render import placed_size, projected_scale

        array = _array(weights)
        keys = queries if keys is None else keys
        if array.ndim not in (2, 3) or array.shape[-2:] != (len(queries), len(keys)):
            raise ValueError(f"slide.heatmap needs weights of shape ({len(queries)}, {len(keys)}) for its labels "
                             f"(or a stack of them), got {array.shape}")
        labels = LABELS[self.lang]
        queries, keys = list(map(str, queries)), list(map(str, keys))
        if array.ndim == 3:
            fig = plt.figure(figsize=placed_size(widened((4.6, 2.6), self._height), self._height))
            return heads_figure(array, queries, keys, labels=labels, height=self._height, precision=precision,
                                annotate=annotate, cmap=cmap, title=title, titles=titles, fig=fig)
        fig = plt.figure(figsize=placed_size(widened((4.2, 3.2), self._height, heatmap_width(len(keys))), self._height))
        ax = fig.add_subplot()
        if title:
            ax.set_title(title)
        heatmap = attention_heatmap(ax, array, queries, keys, precision=precision, annotate=annotate, cmap=cmap,
                                    labels=labels, scale=projected_scale(fig, self._height))
        weights_colorbar(fig, heatmap, ax=ax, labels=labels, fraction=0.06, pad=0.03)
        return fig

    def data(self, **values) -> None:
        """Add ``values`` (numbers, lists, tensors, arrays) to the block's JSON file, ``<id>.json``."""
        self.values.update(_jsonable(values))


def _no_escapes(what: str, text: str, *, math: bool = False) -> None:
    """Raise ``ValueError`` naming ``what`` when ``text`` holds a control character where LaTeX was
    meant (:func:`filters.blocks.parsers.escape_problem`)."""
    problem = escape_problem(text, math=math)
    if problem:
        raise ValueError(f"{what}: {problem}")


def _engine():
    """The ``engine`` package with every lecture module imported (named here one by one, so that a
    ``.run`` block's cache key covers the whole engine)."""
    import engine
    import engine.attention
    import engine.block
    import engine.device
    import engine.embedding
    import engine.masks
    import engine.optim
    import engine.positional
    import engine.pretrained
    import engine.recurrent
    import engine.tokens
    import engine.toy
    import engine.wordpiece  # noqa: F401

    return engine


def _own_frames(tb) -> tuple[tuple[int, str, str], ...]:
    """The frames of traceback ``tb`` that are the block's code: ``(line, function, source)``."""
    frames = traceback.extract_tb(tb)
    return tuple((f.lineno, "the block" if f.name == "<module>" else f.name, (f.line or "").strip())
                 for f in frames if f.filename == CODE_FILE)


# What a block's printed output may keep: a slide shows a screenful, and TeX runs out of memory
# long before megabytes of verbatim text. The rest is counted and the slide says it was cut.
KEPT_CHARS = 100_000
KEPT_LINES = 2_000

# The note that ends a block's output when some of it was cut.
CUT = {
    "es": "_(Salida recortada: el bloque imprimió {total} caracteres; se muestran los primeros {kept}.)_",
    "en": "_(Output cut: the block printed {total} characters; the first {kept} are shown.)_",
}


class _Kept:
    """What a block prints, kept up to :data:`KEPT_CHARS` characters and :data:`KEPT_LINES` lines
    (all its printed pieces together); the rest is only counted. Linear in what is printed: each
    piece is a list of chunks, joined once at the end (``str +=`` on a value in a dict copies it all
    each time: megabytes printed line by line took minutes)."""

    def __init__(self, chars: int = KEPT_CHARS, lines: int = KEPT_LINES):
        self.chars, self.lines = chars, lines  # what may still be kept
        self.total = self.kept = 0  # characters printed, characters kept

    def take(self, text: str) -> str:
        """The part of ``text`` that is kept (all of it, a head, or ``""``); counts the rest."""
        self.total += len(text)
        head = text[:self.chars]
        if head.count("\n") >= self.lines:  # cut after the last line allowed
            head = head[:_nth_newline(head, self.lines) + 1]
        self.chars -= len(head)
        self.lines -= head.count("\n")
        self.kept += len(head)
        if len(head) < len(text):
            self.chars = self.lines = 0  # cut once: nothing after a cut is kept
        return head

    def note(self, lang: str) -> dict[str, str] | None:
        """The piece that says the output was cut (``{"text": markdown}``), or ``None``."""
        if self.total == self.kept:
            return None
        total, kept = (f"{n:,}".replace(",", " " if lang == "es" else ",") for n in (self.total, self.kept))
        return {"text": CUT.get(lang, CUT["en"]).format(total=total, kept=kept)}


def _nth_newline(text: str, n: int) -> int:
    """The index in ``text`` of its ``n``-th newline (from 1); it has at least ``n``."""
    at = -1
    for _ in range(n):
        at = text.index("\n", at + 1)
    return at


class _Printed(io.TextIOBase):
    """``sys.stdout`` of a block: what it prints becomes a piece of the slide, in order with the rest.
    A piece's ``printed`` is a list of chunks while the block runs (see :class:`_Kept`)."""

    def __init__(self, slide: Slide, kept: _Kept):
        self._slide, self._kept = slide, kept

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        kept = self._kept.take(text)
        outputs = self._slide.outputs
        if kept and outputs and "printed" in outputs[-1] \
                and outputs[-1]["after_figure"] == self._slide._figures_so_far():
            outputs[-1]["printed"].append(kept)
        elif kept:
            self._slide._put(printed=[kept])
        return len(text)


@contextlib.contextmanager
def _descriptor_1_captured():
    """Output written to file descriptor 1 itself (``os.system``, a C library, a subprocess) goes to a
    file while the block runs, never to the filter's stdout (pandoc's JSON stream). Yields a
    function that returns ``(text, unread)``: the start of what was written, and how many bytes
    after it were not read."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        try:
            yield lambda: _start_of(sink)
        finally:
            os.dup2(saved, 1)
            os.close(saved)


def _start_of(sink) -> tuple[str, int]:
    """The start of file ``sink`` as text, as much as a block's output may keep (a block may write
    gigabytes there), and how many bytes after it were not read."""
    sink.seek(0)
    start = sink.read(4 * KEPT_CHARS)  # a character takes at most 4 bytes in UTF-8
    return start.decode(errors="replace"), os.fstat(sink.fileno()).st_size - len(start)


class _Reads:
    """The files inside ``root`` that a block's code opens to read, and the files of the modules it
    imports from there: what its result depends on besides its code. Files of the Python
    installation (a virtual environment inside the project too), of the build's folder, compiled
    ``__pycache__`` files and attnslides' own code (``engine``, ``filters``: in the cache key
    already, by the rule that leaves comments out) are not the block's inputs."""

    active: _Reads | None = None  # the recorder this process's audit hook feeds
    _hooked = False

    def __init__(self, root: Path):
        self.root = os.path.realpath(root)
        import engine
        import filters

        ours = [os.path.dirname(package.__file__) for package in (engine, filters)]
        prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.join(self.root, BUILD_FOLDER), *ours}
        self.excluded = tuple(os.path.join(os.path.realpath(p), "") for p in prefixes)
        self.paths: set[str] = set()

    def add(self, path) -> None:
        path = os.path.realpath(os.fsdecode(path))
        if path.startswith(os.path.join(self.root, "")) and not path.startswith(self.excluded) \
                and "__pycache__" not in path:
            self.paths.add(path)

    @classmethod
    def _audit(cls, event: str, args: tuple) -> None:
        """The audit hook (PEP 578): an ``open`` for reading (not writing only) is recorded."""
        recorder = cls.active
        if recorder is None or event != "open" or isinstance(args[0], int):
            return
        try:
            if args[2] & getattr(os, "O_ACCMODE", 3) != os.O_WRONLY:
                recorder.add(args[0])
        except Exception:  # noqa: BLE001 — a hook that raises would break the block's own open()
            pass

    @contextlib.contextmanager
    def recording(self):
        """Record while the block runs: the files it opens, then the modules it imported."""
        if not _Reads._hooked:  # a hook cannot be removed: one per process, idle when no block runs
            sys.addaudithook(_Reads._audit)
            _Reads._hooked = True
        modules = set(sys.modules)
        _Reads.active = self
        try:
            yield self
        finally:
            _Reads.active = None
            for name in set(sys.modules) - modules:
                file = getattr(sys.modules.get(name), "__file__", None)
                if file:
                    self.add(file)

    def write(self, folder: Path) -> None:
        """``folder / DEPENDS``: each file's path relative to the root, and its SHA-256 now
        (``null``: it was gone when the block ended); nothing when the block read no file."""
        if not self.paths:
            return
        digests = {os.path.relpath(p, self.root): file_sha256(Path(p)) if os.path.isfile(p) else None
                   for p in sorted(self.paths)}
        write_atomic(folder / DEPENDS, json.dumps(digests, indent=1, sort_keys=True).encode())


def _from_source(reads: _Reads):
    """A ``sys.path_hooks`` entry: modules in the project's folders (the deck's helpers) are compiled
    from their source, never from a ``__pycache__`` file, which Python trusts by the source's size
    and time in whole seconds: a helper edited twice in one second would run its old code."""
    import importlib.machinery as machinery

    class FromSource(machinery.SourceFileLoader):
        def path_stats(self, path):
            raise OSError("no bytecode: compiled from the source")  # neither read nor written

    def hook(path: str):
        resolved = os.path.realpath(path or ".")
        if not resolved.startswith(os.path.join(reads.root, "")) and resolved != reads.root \
                or resolved.startswith(reads.excluded):
            raise ImportError("not a folder of the project")
        return machinery.FileFinder(path, (FromSource, machinery.SOURCE_SUFFIXES))

    return hook


@contextlib.contextmanager
def _at_home(home: Path | None, reads: _Reads):
    """Run in the deck's folder ``home``, first on ``sys.path`` (``None``: the build's folder), the
    project's modules compiled from source (:func:`_from_source`); all put back after, so that the
    figures are saved where the build said."""
    before, path, hooks = os.getcwd(), list(sys.path), list(sys.path_hooks)
    if home is not None:
        os.chdir(home)
        sys.path.insert(0, str(home))
    sys.path_hooks.insert(0, _from_source(reads))
    sys.path_importer_cache.clear()  # the finders of the folders already seen, made anew with the hook
    try:
        yield
    finally:
        os.chdir(before)
        sys.path[:], sys.path_hooks[:] = path, hooks
        sys.path_importer_cache.clear()


def _trace_of(exc: BaseException) -> tuple[tuple[int, str, str], ...]:
    """The block's own frames of ``exc``'s traceback; a deep recursion keeps its first and last 4."""
    frames = _own_frames(exc.__traceback__)
    if len(frames) > 10:
        frames = (*frames[:4], (frames[4][0], f"… {len(frames) - 8} more calls …", ""), *frames[-4:])
    return frames


def _figure_size(height: str) -> tuple[float, float]:
    """The size of a block's figures by default: the style's proportions, at the size the figure
    has on the slide (:func:`filters.figures.render.placed_size`)."""
    import matplotlib

    from filters.figures.render import placed_size

    return placed_size(tuple(matplotlib.rcParams["figure.figsize"]), height)


def _fit_to_slide(fig, size: tuple[float, float]) -> None:
    """Give a block's figure ``size`` (inches), the size it has on the slide (its proportions
    kept: :func:`filters.figures.render.arrange`), so that its fonts' points are the page's, and
    raise every text under :data:`~filters.figures.render.MIN_TEXT_PT` to it: a figure made at
    another size (``plt.figure(figsize=(8, 4))``) or with small fonts stays readable from the back
    of a hall."""
    from matplotlib.text import Text

    from filters.figures.render import MIN_TEXT_PT

    fig.set_size_inches(*size, forward=False)
    for text in fig.findobj(Text):
        if text.get_text() and text.get_fontsize() < MIN_TEXT_PT:
            text.set_fontsize(MIN_TEXT_PT)


def execute(code: str, *, seed: int, device: str, lang: str, height: str, folder: Path, ext: str,
            home: Path | None = None, project: Path | None = None, page=None, ncol: int | None = None) -> dict[str, Any]:
    """Run ``code`` as described above, in the deck's folder ``home``; save its figures as
    ``folder/figure-<n>.<ext>`` and, when it read files of ``project``, ``folder/depends.json``.
    Its time limit is the worker's (:mod:`filters.workers.limits`); here a :class:`JobTimeout`
    only learns the line of the block it struck.

    Figures are the pyplot figures still open at the end, in the order of their numbers (the order
    they were made, unless the code numbers them itself), then :class:`matplotlib.figure.Figure`
    objects the code kept in a variable. They share the block's ``height`` on ``page``: ``ncol``
    side by side when they follow one another (``None``: as many as make them largest), the rows
    dividing the height (:func:`filters.figures.render.arrange`).

    Returns:
        The block's data: ``outputs`` (in order: ``{"figure": n}``, ``{"math": latex}``,
        ``{"text": markdown}``, ``{"printed": text}``), ``figures`` (how many), ``ncol`` (side by
        side), ``heights`` (each figure's, as a length), ``data`` (what the code gave
        ``slide.data``), ``seed`` and ``device``.

    Raises:
        BlockError: when the code does not compile, raises or exits, with the line (of the block's
            body) at fault and the block's own frames of the traceback.
        JobTimeout: when the block's time limit strikes (with the line it was on).
        JobOutOfMemory: when the block tried to take more memory than its limit (with the line).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from engine.device import pick
    from filters.figures.render import deck_style

    dev = pick(device)
    slide = Slide(device=dev, lang=lang, height=height)
    compiled = _compiled(code)
    namespace = _namespace(slide, seed)
    kept, reads = _Kept(), _Reads(project or Path.cwd())
    folder = Path(folder).resolve()  # the code may change the working folder
    try:
        with deck_style(page or _default_page()), warnings.catch_warnings(), _descriptor_1_captured() as written:
            # Tensors handed straight to matplotlib (plt.bar(x, weights)) work, but numpy 2 warns
            # about their array protocol inside matplotlib: noise for a lecturer, not their bug.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="matplotlib")
            matplotlib.rcParams["figure.figsize"] = _figure_size(height)
            with _at_home(home, reads), reads.recording():
                _run(compiled, namespace, slide, kept)
            numbers, placed = _save_figures(namespace, folder, ext, height, slide.outputs, ncol)
            low_level, unread = written()
    finally:
        plt.close("all")
    if project is not None:
        reads.write(folder)
    outputs = _in_order(slide.outputs, numbers) + _printed_last(kept, low_level, unread, lang)
    return {"seed": seed, "device": dev.type, "figures": len(numbers), "ncol": placed[0],
            "heights": [f"{h * 72.27:.2f}pt" for _, h in placed[1]], "outputs": outputs, "data": slide.values}


def _default_page():
    from filters.blocks.page import DEFAULT_PAGE

    return DEFAULT_PAGE


def _printed_last(kept: _Kept, low_level: str, unread: int, lang: str) -> list[dict]:
    """What a program the block started (or C code) printed, which comes last, and the note that
    the output was cut, when it was."""
    low_level = kept.take(low_level)
    kept.total += unread
    pieces = [{"printed": low_level.rstrip()}] if low_level.strip() else []
    return pieces + ([kept.note(lang)] if kept.note(lang) else [])


def _compiled(code: str):
    """The block's code compiled under :data:`CODE_FILE`, its lines kept for tracebacks.

    Raises:
        BlockError: when it does not compile, with the line at fault.
    """
    try:
        compiled = compile(code, CODE_FILE, "exec")
    except SyntaxError as exc:
        message = re.sub(r" \(detected at line \d+\)", "", exc.msg)  # a line of the block: the message says the deck's
        raise BlockError(f"the code does not compile: {message}", line=exc.lineno) from None
    linecache.cache[CODE_FILE] = (len(code), None, code.splitlines(True), CODE_FILE)  # source lines in tracebacks
    return compiled


def _namespace(slide: Slide, seed: int) -> dict[str, Any]:
    """The names a block's code finds, with torch, numpy and ``random`` seeded and no figure open."""
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    namespace = {"__name__": "__attnslides_run__", "engine": _engine(), "torch": torch, "np": np, "plt": plt,
                 "slide": slide}
    plt.close("all")
    # printed tensors and arrays wrap where a slide's code block does (CODE_WIDTH)
    torch.set_printoptions(linewidth=CODE_WIDTH)
    np.set_printoptions(linewidth=CODE_WIDTH)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)  # numpy's legacy seed is 32-bit
    random.seed(seed)
    return namespace


def _run(compiled, namespace: dict[str, Any], slide: Slide, kept: _Kept) -> None:
    """Execute the block, its printed output going to the slide; an exception becomes a
    :class:`BlockError` (a :class:`JobTimeout` stays one; an allocation that failed becomes a
    :class:`JobOutOfMemory`) with the block's own lines."""
    try:
        with contextlib.redirect_stdout(_Printed(slide, kept)):
            exec(compiled, namespace)
    except JobTimeout as exc:
        frames = _own_frames(exc.__traceback__)
        raise JobTimeout(frames[-1][0] if frames else None) from None
    except Exception as exc:
        if not JobOutOfMemory.caused(exc):
            raise _failed(exc) from None
        frames = _own_frames(exc.__traceback__)
        raise JobOutOfMemory(frames[-1][0] if frames else None) from None
    except BaseException as exc:  # noqa: BLE001 — SystemExit and KeyboardInterrupt are the block's too
        raise _failed(exc) from None


def _failed(exc: BaseException) -> BlockError:
    """The error of a block that raised ``exc``, with the block's own lines."""
    frames = _trace_of(exc)
    what = "called exit()" if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"
    details = "".join(traceback.format_exception(exc)) if tracebacks_wanted() else ""
    return BlockError(what, line=frames[-1][0] if frames else None, trace=frames, details=details)


def _save_figures(namespace: dict[str, Any], folder: Path, ext: str, height: str, pieces: list[dict],
                  ncol: int | None) -> tuple[list[float], tuple[int, list[tuple[float, float]]]]:
    """Save the figures the block made, in order: the pyplot ones by number, then those kept in a
    variable, each at its size on the slide: together ``height`` high, ``ncol`` side by side
    when nothing of ``pieces`` (the slide's other outputs) comes between them. Returns their
    numbers (kept ones: ``inf``, they come last) and where they went (figures in a row, each
    one's size in inches)."""
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from filters.figures.render import arrange, before_save, save, shrink_to_fit

    numbers = sorted(plt.get_fignums())
    figures = [plt.figure(number) for number in numbers]
    kept = [value for value in namespace.values() if isinstance(value, Figure) and value not in figures]
    figures, numbers = figures + kept, numbers + [math.inf] * len(kept)
    if not figures:
        return numbers, (1, [])
    shown = [i for i, piece in enumerate(_in_order(pieces, numbers)) if "figure" in piece]
    together = shown[-1] - shown[0] == len(shown) - 1
    placed = arrange([tuple(f.get_size_inches()) for f in figures], height, ncol=ncol, together=together)
    for n, (fig, size) in enumerate(zip(figures, placed[1], strict=True), start=1):
        _check_texts(fig, n)
        _fit_to_slide(fig, size)
        # a title or label that runs off the slide's size gives up a point or two first (never under
        # 7 pt); texts the code placed over one another are its own design, tick labels never
        before_save(fig, functools.partial(shrink_to_fit, overlaps=False))
        try:
            save(fig, folder / f"figure-{n}.{ext}", apart="ticks")
        except BlockError as exc:  # a text runs off it, or ticks collide: say which figure, and its room
            shared = f", {len(figures)} figures sharing the block's height {height}" if len(figures) > 1 else ""
            raise BlockError(f"figure {n} (drawn {size[0] * 72:.0f} × {size[1] * 72:.0f} pt, as placed{shared}): "
                             f"{exc.message}" + (" (or layout-ncol)" if len(figures) > 1 else "")) from None
    return numbers, placed


def _roles(fig) -> dict[int, str]:
    """What each of ``fig``'s named texts is, by ``id``: titles, axis labels, legend entries."""
    roles = {id(t): "title" for t in (getattr(fig, "_suptitle", None),) if t is not None}
    for ax in fig.axes:
        roles.update({id(t): "title" for t in (ax.title, ax._left_title, ax._right_title)})
        roles.update({id(ax.xaxis.label): "x-axis label", id(ax.yaxis.label): "y-axis label"})
        roles.update({id(t): "tick label" for t in (*ax.get_xticklabels(), *ax.get_yticklabels())})
        legend = ax.get_legend()
        roles.update({id(t): "legend entry" for t in (legend.get_texts() if legend else ())})
    return roles


def _check_texts(fig, n: int) -> None:
    """Every text of figure ``n`` (titles, axis and tick labels, legends, annotations) is free of
    control characters (:func:`filters.blocks.parsers.escape_problem`): ``plt.xlabel("$d_\\text{model}$")``
    draws "d_extmodel" without a word.

    Raises:
        BlockError: naming the figure, the text's role and the text, with the fix.
    """
    from matplotlib.text import Text

    roles = None
    for text in fig.findobj(Text):
        problem = escape_problem(text.get_text())
        if problem:
            roles = roles or _roles(fig)
            raise BlockError(f"figure {n}'s {roles.get(id(text), 'text')}: {problem}")


def _in_order(pieces: list[dict], numbers: list[int]) -> list[dict]:
    """Pieces and figures in the order they were made: a piece made when figure number ``k`` was the
    newest comes after it. Figures are numbered on the slide from 1, in the order given."""
    outputs, pieces = [], list(pieces)
    for n, number in enumerate(numbers, start=1):
        while pieces and pieces[0]["after_figure"] < number:
            outputs.append(_without_marker(pieces.pop(0)))
        outputs.append({"figure": n})
    return outputs + [_without_marker(p) for p in pieces]


def _without_marker(piece: dict) -> dict:
    piece = {k: v for k, v in piece.items() if k != "after_figure"}
    if "printed" in piece:
        piece["printed"] = "".join(piece["printed"]).rstrip("\n")
    return piece
