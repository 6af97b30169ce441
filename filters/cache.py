"""A content-addressed cache of figures and their data (pandoc-plot's idea).

An entry's name is a hash of exactly what changes its picture or data:

* the block's kind and its options that change the figure (caption, alt text, size on the slide
  and id excluded);
* the source of the code the kind really uses: its own file and, followed through their imports,
  the shared modules and engine modules it imports — found by reading the imports, so nobody keeps
  a list by hand. Sources are compared as their syntax tree with the text written for people left
  out: comments, docstrings, ``help=`` of options and a kind's default ``captions=``. Editing one
  kind's file re-renders only that kind's figures; editing a help string, a caption, a comment or a
  docstring re-renders nothing;
* for figures: the deck's style file and the matplotlibrc in force (a user's ``matplotlibrc`` or
  ``$MATPLOTLIBRC`` changes the pictures);
* the versions of Python, torch, numpy, matplotlib and pandoc, the output format, the language of
  the labels and the device class.

An entry is a folder::

    build/cache/<key>/data.json            the numbers the figure shows, and their inputs
    build/cache/<key>/figure.pdf|svg|png   the picture (figure kinds)

It is written in a temporary folder and renamed into place: a build killed half-way leaves at most
a ``.tmp-*`` folder, which no build trusts, and two builds that render the same entry at once both
end with one complete entry. Computing a key imports neither torch nor matplotlib.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import os
import platform
import re
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from engine.device import resolve
from filters import STYLE
from filters.options import figure_options

_UMASK = os.umask(0)
os.umask(_UMASK)

# The packages whose source is part of a key; imports of anything else are covered by versions().
_OURS = ("engine", "filters")
# Keyword arguments that hold text for people, never drawn: left out of a source's digest.
_FOR_PEOPLE = ("help", "captions")


class _WithoutTextForPeople(ast.NodeTransformer):
    """Drops docstrings and the keyword arguments of :data:`_FOR_PEOPLE` from a syntax tree."""

    def _drop_docstring(self, node):
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
        return self.generic_visit(node)

    visit_Module = visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _drop_docstring

    def visit_Call(self, node: ast.Call):
        node.keywords = [k for k in node.keywords if k.arg not in _FOR_PEOPLE]
        return self.generic_visit(node)


@functools.cache
def _module_file(name: str) -> Path | None:
    """The source file of module ``name`` (``None`` if there is no such module); imports only its
    parent packages, never the module itself (so no torch)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None


def _is_package(name: str) -> bool:
    file = _module_file(name)
    return file is not None and file.name == "__init__.py"


def _imports(tree: ast.Module, name: str) -> set[str]:
    """The modules of :data:`_OURS` that module ``name`` (parsed as ``tree``) imports, anywhere in
    its file (inside a function too: that is how kinds import the engine)."""
    found = set()
    package = name if _is_package(name) else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            if base.split(".")[0] not in _OURS:
                continue  # never look into other packages: finding their modules would import them
            for alias in node.names:  # `from package import module` names a module; else an object
                found.add(f"{base}.{alias.name}" if _is_package(base) and _module_file(f"{base}.{alias.name}") else base)
    return {m for m in found if m.split(".")[0] in _OURS and _module_file(m)}


class Sources:
    """What the code of each of our modules brings to a key: the digest of its source with the text
    for people left out, and the modules of ours it imports.

    Parsing a module and dumping its syntax tree costs about 10 ms, and a deck's kinds use some 20
    modules: too slow to pay on every warm build. So the results are remembered in ``memo`` (the
    cache's ``.sources.json``) under the sha256 of each file's bytes: a warm build reads the files
    and the record, and parses only the modules whose bytes changed.
    """

    def __init__(self, memo: Path | None = None):
        self.memo = memo
        self._known: dict[str, dict] = {}
        if memo is not None and memo.is_file():
            try:
                self._known = json.loads(memo.read_text())
            except (OSError, ValueError):
                self._known = {}  # a damaged record is only a slower build
        self._now: dict[str, dict] = {}  # checked in this process
        self._changed = False

    def _entry(self, name: str) -> dict:
        if name not in self._now:
            raw = _module_file(name).read_bytes()
            sha = hashlib.sha256(raw).hexdigest()
            entry = self._known.get(name)
            if not isinstance(entry, dict) or entry.get("sha256") != sha:
                tree = ast.parse(raw)
                imports = sorted(_imports(tree, name))
                digest = hashlib.sha256(ast.dump(_WithoutTextForPeople().visit(tree)).encode()).hexdigest()
                entry = {"sha256": sha, "digest": digest, "imports": imports}
                self._known[name], self._changed = entry, True
            self._now[name] = entry
        return self._now[name]

    def digest(self, name: str) -> str:
        """sha256 of module ``name``'s syntax tree without comments, docstrings, help texts and
        default captions: an edit of those leaves it unchanged."""
        return self._entry(name)["digest"]

    def closure(self, name: str) -> tuple[str, ...]:
        """``name`` and every module of ours it imports, directly or not, sorted."""
        seen, todo = set(), [name]
        while todo:
            module = todo.pop()
            if module not in seen:
                seen.add(module)
                todo.extend(self._entry(module)["imports"])
        return tuple(sorted(seen))

    def save(self) -> None:
        """Write the record, if anything in it changed (and there is a cache folder to hold it)."""
        if self._changed and self.memo is not None and self.memo.parent.is_dir():
            write_atomic(self.memo, json.dumps(self._known, indent=0, sort_keys=True).encode())
            self._changed = False


_IN_MEMORY = Sources()  # for keys computed without a cache folder (tests, tools)


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def matplotlibrc() -> str:
    """sha256 of the matplotlibrc that matplotlib will read, or ``"default"`` for its own.

    The search follows ``matplotlib.matplotlib_fname()``: ``./matplotlibrc``, ``$MATPLOTLIBRC``
    (a file, or a folder holding one), then the configuration folder (``$MPLCONFIGDIR``, else
    ``$XDG_CONFIG_HOME/matplotlib`` or ``~/.config/matplotlib`` on Linux, ``~/.matplotlib``
    elsewhere); last, matplotlib's own defaults, which its version in the key stands for. Written
    out because importing matplotlib to ask costs about 0.15 s, on every build whose figures are
    all cached. Our style file (``filters/attnslides.mplstyle``) is applied on top of it.
    """
    candidates = [Path("matplotlibrc")]
    if "MATPLOTLIBRC" in os.environ:
        candidates += [Path(os.environ["MATPLOTLIBRC"]), Path(os.environ["MATPLOTLIBRC"]) / "matplotlibrc"]
    if os.environ.get("MPLCONFIGDIR"):
        candidates.append(Path(os.environ["MPLCONFIGDIR"]) / "matplotlibrc")
    elif sys.platform.startswith(("linux", "freebsd")):
        xdg = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
        candidates.append(Path(xdg) / "matplotlib" / "matplotlibrc")
    else:
        candidates.append(Path.home() / ".matplotlib" / "matplotlibrc")
    for path in candidates:
        if path.is_file():
            return _file_digest(path)
    return "default"


@functools.cache
def versions() -> dict[str, str]:
    """Versions of Python and of the libraries that compute or draw, read from package metadata
    (no import)."""
    found = {"python": platform.python_version()}
    for package in ("torch", "numpy", "matplotlib"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "absent"
    found["pandoc"] = pandoc_version()
    return found


def pandoc_version() -> str:
    """The running pandoc's version: pandoc (and ``attnslides build``) tells its filters in
    ``PANDOC_VERSION``; otherwise (tests calling ``main(doc)``, the build itself) the version of
    the pandoc in pypandoc-binary."""
    version = os.environ.get("PANDOC_VERSION")
    if version:
        return version
    import pypandoc

    return str(pypandoc.get_pandoc_version())


def key_for(kind, options, *, fmt: str, device: str, lang: str = "en", sources: Sources | None = None) -> str:
    """The cache key of one block: 20 hex digits of a sha256.

    Args:
        kind: the block's :class:`filters.kind.Kind`.
        options: its parsed options.
        fmt: the output family and file type, e.g. ``"latex/pdf"`` or ``"html/svg"``; ``"text"``
            for a text kind, whose entry holds data only.
        device: the device setting (``cpu``, ``cuda``, ``mps``, ``auto``).
        lang: the language of the figure's labels (``es``, ``en``).
        sources: where module digests are remembered (a cache's :attr:`Cache.sources`).
    """
    sources = sources or _IN_MEMORY
    payload = {
        "kind": kind.name,
        "lang": lang,
        "options": figure_options(options),
        "sources": {name: sources.digest(name) for name in sources.closure(kind.module)},
        "versions": versions(),
        "format": fmt,
        "device": resolve(device),
    }
    if kind.output == "figure":
        payload["style"] = _file_digest(STYLE)
        payload["matplotlibrc"] = matplotlibrc()
    text = json.dumps(payload, sort_keys=True, default=list, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class Cache:
    """The cache folder. ``entry(key)`` is a complete entry or ``None``; ``publish`` adds one."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.sources = Sources(self.root / ".sources.json")

    def path(self, key: str) -> Path:
        return self.root / key

    def entry(self, key: str) -> Path | None:
        """The folder of a complete entry, or ``None`` (temporary folders are never entries)."""
        folder = self.path(key)
        return folder if (folder / "data.json").is_file() else None

    def staging(self, key: str) -> Path:
        """A new private folder to write an entry into, before :meth:`publish`."""
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=self.root))

    def publish(self, staging: Path, key: str) -> Path:
        """Rename ``staging`` to the entry ``key``, atomically. If another build published the same
        entry first, keep theirs (same key, same content) and drop ours."""
        target = self.path(key)
        os.chmod(staging, 0o777 & ~_UMASK)
        for path in staging.iterdir():
            os.chmod(path, 0o666 & ~_UMASK)
        try:
            os.rename(staging, target)
        except OSError:
            if self.entry(key) is None:
                raise
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def keys(self) -> set[str]:
        return {p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")} if self.root.is_dir() else set()

    # ---- which decks use what: one manifest per deck and output format, rewritten at each build ----

    def record(self, deck: str, family: str, keys: list[str], figures: list[Path]) -> None:
        """Note that ``deck``, built for ``family``, uses these entries and figure files."""
        name = re.sub(r"[^A-Za-z0-9]+", "-", f"{deck}-{family}").strip("-")
        manifest = {"deck": deck, "format": family, "keys": sorted(set(keys)), "figures": sorted(map(str, figures))}
        write_atomic(self.root / ".manifests" / f"{name}.json", json.dumps(manifest, indent=1).encode())

    def clean(self) -> dict[str, int]:
        """Remove what no deck uses: entries and figure files that no manifest names, manifests of
        decks that no longer exist, and the temporary folders of interrupted builds.

        Returns:
            Counts of what was removed: ``entries``, ``figures``, ``manifests``, ``temporary``.
        """
        removed = dict.fromkeys(("entries", "figures", "manifests", "temporary"), 0)
        keys, figures, folders = set(), set(), set()
        for path in sorted((self.root / ".manifests").glob("*.json")):
            manifest = json.loads(path.read_text())
            if manifest["deck"].endswith(".md") and not Path(manifest["deck"]).exists():
                path.unlink()
                removed["manifests"] += 1
                continue
            keys.update(manifest["keys"])
            figures.update(Path(f).resolve() for f in manifest["figures"])
            folders.update(Path(f).resolve().parent for f in manifest["figures"])
        if not self.root.is_dir():
            return removed
        for path in self.root.iterdir():
            if path.name.startswith(".tmp-"):
                shutil.rmtree(path, ignore_errors=True)
                removed["temporary"] += 1
            elif path.is_dir() and not path.name.startswith(".") and path.name not in keys:
                shutil.rmtree(path, ignore_errors=True)
                removed["entries"] += 1
        for folder in folders:
            for path in folder.iterdir() if folder.is_dir() else ():
                if path.is_file() and path.resolve() not in figures:
                    path.unlink()
                    removed["figures"] += 1
        return removed


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: readers see the old file or
    the new one, never half of one. (The standard library has no one-call atomic write.)"""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes a private file; figures are for students
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def copy_atomic(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` unless ``target`` already holds the same bytes."""
    data = source.read_bytes()
    if not (target.is_file() and target.read_bytes() == data):
        write_atomic(target, data)
