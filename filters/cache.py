"""A content-addressed cache of figures and their data (pandoc-plot's idea).

An entry's name is a hash of exactly what changes its picture or data:

* the block's kind and its options that change the figure (caption, alt text and id excluded);
* the source of the code the kind really uses: its own file, :mod:`filters.entry` (which runs it and
  saves its pictures) and, followed through their imports, the shared and engine modules they
  import with the packages that hold them — found by reading the imports, so nobody keeps a list by
  hand — and the data files the kind names (``Kind.files``). Sources are compared as their syntax
  tree with the text written for people left out: comments, docstrings, ``help=`` of options, a
  kind's default ``captions=`` and its starter-deck ``EXAMPLES``. Editing one kind's file re-renders
  only that kind's figures; editing a help string, a caption, a comment or a docstring re-renders
  nothing;
* for figures: the deck's style file and the matplotlibrc in force (a user's ``matplotlibrc`` or
  ``$MATPLOTLIBRC`` changes the pictures);
* the versions of Python, torch, numpy, matplotlib and pandoc, the output format, the language of
  the labels (figures) and the device class.

An entry is a folder, ``build/cache/<key>/`` (see :mod:`filters.entry`). It is written in a
temporary folder and renamed into place: a build killed half-way leaves at most a ``.tmp-*``
folder, which no build trusts, and two builds that render the same entry at once both end with one
complete entry. Computing a key imports neither torch nor matplotlib.
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
import time
from importlib import metadata
from pathlib import Path

from engine.device import resolve
from filters import STYLE, available_fallback_fonts
from filters.errors import PREFIX
from filters.options import figure_options

_UMASK = os.umask(0)
os.umask(_UMASK)

# The packages whose source is part of a key; imports of anything else are covered by versions().
_OURS = ("engine", "filters")
# Text for people, never drawn, left out of a source's digest: keyword arguments with these names,
# and module-level constants with these names.
_FOR_PEOPLE = ("help", "captions", "examples")
_FOR_PEOPLE_CONSTANTS = ("EXAMPLES",)


class _WithoutTextForPeople(ast.NodeTransformer):
    """Drops docstrings, the keyword arguments of :data:`_FOR_PEOPLE` and the module-level
    constants of :data:`_FOR_PEOPLE_CONSTANTS` from a syntax tree."""

    def visit_Module(self, node: ast.Module):
        node.body = [statement for statement in node.body if not _assigns(statement, _FOR_PEOPLE_CONSTANTS)]
        return self._drop_docstring(node)

    def _drop_docstring(self, node):
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
        return self.generic_visit(node)

    visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _drop_docstring

    def visit_Call(self, node: ast.Call):
        node.keywords = [k for k in node.keywords if k.arg not in _FOR_PEOPLE]
        return self.generic_visit(node)


def _assigns(statement: ast.stmt, names: tuple[str, ...]) -> bool:
    """Whether ``statement`` is ``NAME = …`` (or ``NAME: T = …``) for one of ``names``."""
    targets = statement.targets if isinstance(statement, ast.Assign) else \
        [statement.target] if isinstance(statement, ast.AnnAssign) else []
    return any(isinstance(t, ast.Name) and t.id in names for t in targets)


@functools.cache
def _spec(name: str):
    """``importlib``'s spec of module ``name`` (``None`` if there is none). Finding it imports its
    parent packages only, never the module itself (so no torch)."""
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


def _module_file(name: str) -> Path | None:
    """The source file of module ``name``; ``None`` for no module, or a package without ``__init__.py``."""
    spec = _spec(name)
    return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None


def _is_package(name: str) -> bool:
    spec = _spec(name)
    return spec is not None and spec.submodule_search_locations is not None


def _imports(tree: ast.Module, name: str, package: str) -> list[list]:
    """Every import of ours in module ``name`` (parsed as ``tree``; ``package``: the package it is
    in), anywhere in its file (inside a function too: that is how kinds import the engine), as
    ``[base, name or None]``: ``import a.b`` → ``["a.b", None]``, ``from a import b`` → ``["a", "b"]``.
    Whether ``b`` is a module or an object in ``a`` is decided when the closure is taken, since it
    depends on other files."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [[alias.name, None] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found += [[base, alias.name] for alias in node.names]
    return [pair for pair in found if pair[0].split(".")[0] in _OURS]


def _resolve(base: str, alias: str | None) -> str:
    """The module an import names: ``from package import module`` names the submodule, else the base."""
    return f"{base}.{alias}" if alias and _is_package(base) and _spec(f"{base}.{alias}") else base


def _valid(entry) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and isinstance(entry.get("digest"), str)
            and isinstance(entry.get("imports"), list)
            and all(isinstance(i, list) and len(i) == 2 for i in entry["imports"]))


class Sources:
    """What the code of each of our modules brings to a key: the digest of its source with the text
    for people left out, and the imports of ours it makes.

    Parsing a module and dumping its syntax tree costs about 10 ms, and a deck's kinds use some 20
    modules: too slow to pay on every warm build. So the results are remembered in ``memo`` (the
    cache's ``.sources.json``) under the sha256 of each file's bytes: a warm build reads the files
    and the record, and parses only the modules whose bytes changed. Which module an import names
    is resolved anew at every build (it depends on which files exist).
    """

    def __init__(self, memo: Path | None = None):
        self.memo = memo
        self._known: dict[str, dict] = {}
        if memo is not None and memo.is_file():
            try:
                known = json.loads(memo.read_text())
            except (OSError, ValueError):
                known = {}  # a damaged record is only a slower build
            self._known = {k: v for k, v in known.items() if _valid(v)} if isinstance(known, dict) else {}
        self._now: dict[str, dict] = {}  # checked in this process
        self._changed = False

    def _entry(self, name: str) -> dict:
        if name not in self._now:
            raw = _module_file(name).read_bytes()
            sha = hashlib.sha256(raw).hexdigest()
            entry = self._known.get(name)
            if entry is None or entry["sha256"] != sha:
                tree = ast.parse(raw)
                package = name if _is_package(name) else name.rpartition(".")[0]
                imports = _imports(tree, name, package)
                digest = hashlib.sha256(ast.dump(_WithoutTextForPeople().visit(tree)).encode()).hexdigest()
                entry = {"sha256": sha, "digest": digest, "imports": imports}
                self._known[name], self._changed = entry, True
            self._now[name] = entry
        return self._now[name]

    def digest(self, name: str) -> str:
        """sha256 of module ``name``'s syntax tree without comments, docstrings, help texts and
        default captions: an edit of those leaves it unchanged."""
        return self._entry(name)["digest"]

    def closure(self, *roots: str) -> tuple[str, ...]:
        """``roots`` and every module of ours they import, directly or not, with the packages that
        hold them (Python runs a package's ``__init__.py`` before any module in it), sorted. Only
        imports written as ``import``/``from … import`` are followed; a module loaded by name
        (``importlib.import_module``) or a data file a module reads is not seen."""
        seen, todo = set(), list(roots)
        while todo:
            module = todo.pop()
            if module in seen or module.split(".")[0] not in _OURS:
                continue
            seen.add(module)
            parts = module.split(".")
            todo += [".".join(parts[:n]) for n in range(1, len(parts))]  # its packages
            if _module_file(module) is not None:
                todo += [_resolve(base, alias) for base, alias in self._entry(module)["imports"]]
        return tuple(sorted(m for m in seen if _module_file(m) is not None))

    def save(self) -> None:
        """Write the record, if anything in it changed (and there is a cache folder to hold it)."""
        if self._changed and self.memo is not None and self.memo.parent.is_dir():
            write_atomic(self.memo, json.dumps(self._known, indent=0, sort_keys=True).encode())
            self._changed = False


_IN_MEMORY = Sources()  # for keys computed without a cache folder (tests, tools)
_ENTRY = re.compile(r"[0-9a-f]{20}")  # the name of a cache entry: 20 hex digits of a key


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex: cache keys, entries' checksums, LaTeX's inputs."""
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
            return file_sha256(path)
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
        "lang": lang if kind.output != "text" else "",  # a text kind's entry is data, the same in every language
        "options": figure_options(options),
        "sources": {name: sources.digest(name) for name in sources.closure(kind.module, "filters.entry")},
        "files": {name: file_sha256(Path(_module_file(kind.module)).parent / name) for name in kind.files},
        "versions": versions(),
        "format": fmt,
        "device": resolve(device),
    }
    if kind.output != "text":
        payload["style"] = file_sha256(STYLE)
        payload["fonts"] = available_fallback_fonts()
        payload["matplotlibrc"] = matplotlibrc()
    text = json.dumps(payload, sort_keys=True, default=list, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


_FIGURE_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\.(?:json|pdf|svg|png)")


def _written_by_us(file: Path, folder: Path) -> bool:
    """Whether ``file`` is one a build writes: a figure or its data, directly in the deck's folder,
    which is inside the project (a record that points elsewhere, edited or shared, deletes nothing)."""
    return (file.parent == folder and bool(_FIGURE_FILE.fullmatch(file.name)) and not file.is_symlink()
            and _inside_project(folder))


def project_root() -> Path:
    """The project a build belongs to: the git repository holding the folder the build runs from,
    else that folder. LaTeX may read pictures anywhere in it (filters/texrun.py)."""
    here = Path.cwd().resolve()
    return next((folder for folder in (here, *here.parents) if (folder / ".git").exists()), here)


def _inside_project(folder: Path) -> bool:
    try:
        resolved, project = folder.resolve(), Path.cwd().resolve()
    except OSError:
        return False
    return resolved != project and resolved.is_relative_to(project)


def _well_formed(manifest) -> bool:
    """A manifest as builds write it: a map whose fields have their types (else no build and no
    ``clean`` trusts it)."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("deck"), str):
        return False
    lists = all(isinstance(manifest.get(k, []), list) and all(isinstance(v, str) for v in manifest.get(k, []))
                for k in ("keys", "figures", "written"))
    return lists and isinstance(manifest.get("folder", ""), (str, type(None)))


# A temporary folder or an unnamed entry younger than this may belong to a build still running:
# `clean` leaves it alone (a figure has at most 300 s, see FIGURE_TIME_LIMIT_S).
CLEAN_GRACE_S = 900


CHECKSUMS = "sha256.json"  # in each entry: the SHA-256 of each of its files, written as it is published


def _verify(folder: Path) -> str | None:
    """What is wrong with the entry ``folder`` (its files against its record of them), or ``None``."""
    try:
        record = json.loads((folder / CHECKSUMS).read_text())
    except (OSError, ValueError):
        return "has no readable record of its files"
    if not isinstance(record, dict) or "data.json" not in record:
        return "has no readable record of its files"
    present = {p.name for p in folder.iterdir()} - {CHECKSUMS}
    if present != set(record):
        return f"has files {sorted(present ^ set(record))} its record does not"
    for name, digest in record.items():
        try:
            if file_sha256(folder / name) != digest:
                return f"has a file that changed since it was written ({name})"
        except OSError:
            return f"has a file that cannot be read ({name})"
    return None


class Cache:
    """The cache folder. ``entry(key)`` is a complete entry or ``None``; ``publish`` adds one."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.sources = Sources(self.root / ".sources.json")

    def path(self, key: str) -> Path:
        return self.root / key

    def entry(self, key: str) -> Path | None:
        """The folder of a complete entry whose files are the ones it was published with, or
        ``None`` (temporary folders are never entries). An entry that does not verify — a file cut
        short, edited or gone, or no record of them — is discarded, with a warning, so that it is
        computed again."""
        folder = self.path(key)
        if not folder.is_dir():
            if folder.exists() or folder.is_symlink():  # a file where an entry goes: not ours
                print(f"{PREFIX} warning: the cached figure {key} is not a folder: it is computed again",
                      file=sys.stderr)
                self.discard(key)
            return None
        problem = _verify(folder)
        if problem is None:
            return folder
        print(f"{PREFIX} warning: the cached figure {key} {problem}: it is computed again", file=sys.stderr)
        self.discard(key)
        return None

    def discard(self, key: str) -> None:
        """Remove the entry ``key`` (moved aside first, so that no build ever reads half of it)."""
        folder = self.path(key)
        doomed = Path(tempfile.mkdtemp(prefix=f".tmp-bad-{key}-", dir=self.root))
        try:
            os.rename(folder, doomed / "entry")
        except OSError:
            pass  # another build discarded or replaced it first
        shutil.rmtree(doomed, ignore_errors=True)

    def staging(self, key: str) -> Path:
        """A new private folder to write an entry into, before :meth:`publish`."""
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=self.root))

    def publish(self, staging: Path, key: str) -> Path:
        """Rename ``staging`` to the entry ``key``, atomically. If another build published the same
        entry first, keep theirs (same key, same content) and drop ours."""
        target = self.path(key)
        os.chmod(staging, 0o777 & ~_UMASK)
        files = sorted(p for p in staging.iterdir() if p.name != CHECKSUMS)
        (staging / CHECKSUMS).write_text(json.dumps({p.name: file_sha256(p) for p in files}, indent=1))
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
        """The keys of the entries in the cache folder."""
        if not self.root.is_dir():
            return set()
        return {p.name for p in self.root.iterdir() if p.is_dir() and _ENTRY.fullmatch(p.name)}

    # ---- which decks use what: one manifest per deck and output format, rewritten at each build ----

    def _manifests(self) -> list[tuple[Path, dict]]:
        found = []
        for path in sorted((self.root / ".manifests").glob("*.json")):
            try:
                manifest = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # damaged: no build trusts it, clean leaves it
            if _well_formed(manifest):
                found.append((path, manifest))
        return found

    def record(self, deck: str, family: str, keys: list[str], figures: list[Path], *, identity: str = "",
               folder: Path | None = None) -> None:
        """Note that ``deck`` (``identity``: what tells it from another deck of the same name), built
        for ``family``, uses these entries, its figures ``folder`` and these figure files; and that
        the build wrote them (``written`` grows with every build, so that ``clean`` removes only
        files that attnslides wrote)."""
        identity = identity or deck
        tag = hashlib.sha256(f"{identity}\n{family}".encode()).hexdigest()[:8]
        name = re.sub(r"[^A-Za-z0-9]+", "-", f"{deck}-{family}").strip("-")[:80] + f"-{tag}"
        path = self.root / ".manifests" / f"{name}.json"
        written = set(map(str, figures))
        try:
            written |= set(json.loads(path.read_text()).get("written", []))
        except (OSError, ValueError, AttributeError):
            pass
        manifest = {"deck": deck, "identity": identity, "format": family, "folder": str(folder or ""),
                    "keys": sorted(set(keys)), "figures": sorted(map(str, figures)), "written": sorted(written)}
        write_atomic(path, json.dumps(manifest, indent=1).encode())

    def owners(self, folder: Path) -> set[str]:
        """The identities of the decks whose figures are in ``folder``, by their manifests."""
        return {m.get("identity") or m["deck"] for _, m in self._manifests() if m.get("folder") == str(folder)}

    def clean(self) -> dict[str, int]:
        """Remove what no deck uses any more, and only what attnslides wrote (its records say which):
        cache entries no manifest names, figure files a deck's builds wrote but its last build did
        not use, the manifests, figure files and (emptied) figure folders of decks whose file is
        gone, and the temporary folders of interrupted builds.

        Returns:
            Counts of what was removed: ``entries``, ``figures``, ``manifests``, ``folders``, ``temporary``.
        """
        removed = dict.fromkeys(("entries", "figures", "manifests", "folders", "temporary"), 0)
        keys, used, written, folders = set(), set(), set(), set()
        for path, manifest in self._manifests():
            gone = manifest["deck"].endswith(".md") and not Path(manifest["deck"]).exists()
            folder = Path(manifest["folder"]) if manifest.get("folder") else None
            if folder is not None and _inside_project(folder):
                folders.add(folder)
            # only what a build wrote into its deck's folder, of the types it writes: a record that
            # names anything else (edited, or from an old version) deletes nothing
            written.update(f for f in map(Path, manifest.get("written", manifest.get("figures", [])))
                           if folder is not None and _written_by_us(f, folder))
            if gone:
                path.unlink()
                removed["manifests"] += 1
                continue
            keys.update(manifest.get("keys", []))
            used.update(Path(f) for f in manifest.get("figures", []))
        for file in written - used:
            if file.is_file():
                file.unlink()
                removed["figures"] += 1
        for folder in folders:
            if folder.is_dir() and not any(folder.iterdir()) and folder not in {Path(f).parent for f in used}:
                folder.rmdir()
                removed["folders"] += 1
        if not self.root.is_dir():
            return removed
        now = time.time()
        for path in self.root.iterdir():
            try:
                if now - path.stat().st_mtime < CLEAN_GRACE_S:
                    continue  # perhaps a build's, still running
            except OSError:
                continue
            if path.name.startswith(".tmp-"):
                shutil.rmtree(path, ignore_errors=True)
                removed["temporary"] += 1
            elif path.is_dir() and not path.name.startswith(".") and path.name not in keys and _ENTRY.fullmatch(path.name):
                shutil.rmtree(path, ignore_errors=True)
                removed["entries"] += 1
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
