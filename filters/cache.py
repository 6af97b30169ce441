"""A content-addressed cache of figures and their data (pandoc-plot's idea).

An entry's name is a hash of exactly what changes its picture or data: the block kind, its
normalised options (caption, alt text, size on the slide and id excluded), the source of the engine
and renderer modules it uses, the versions of torch, numpy, matplotlib and pandoc, the output
format, the language of the labels and the device class. An entry is a folder::

    build/cache/<key>/data.json            the arrays the figure shows, and their inputs
    build/cache/<key>/figure.pdf|svg|png   the picture (figure kinds)

It is written in a temporary folder and renamed into place: a build killed half-way leaves at most
a ``.tmp-*`` folder, which no build trusts, and two builds that render the same entry at once both
end with one complete entry. Looking an entry up imports neither torch nor matplotlib.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from filters.options import figure_options

# The modules (and data files) whose source decides each kind's picture and data.
_ENGINE_COMMON = ("engine.device", "filters.compute", "filters.options")
_FIGURE = ("filters.labels", "filters.render", "filters/attnslides.mplstyle")
_SENTENCE = ("engine.attention", "engine.masks", "engine.positional", "engine.tokens")
SOURCES: dict[str, tuple[str, ...]] = {
    "attention": _ENGINE_COMMON + _SENTENCE + _FIGURE,
    "permutation": _ENGINE_COMMON + _SENTENCE + _FIGURE,
    "posenc": _ENGINE_COMMON + ("engine.positional",) + _FIGURE,
    "scaling": _ENGINE_COMMON + ("engine.attention",) + _FIGURE,
    "trained-attention": _ENGINE_COMMON + ("engine.toy",) + _SENTENCE + _FIGURE,
    "attention-steps": _ENGINE_COMMON + ("engine.attention", "filters.latex"),
}

_ROOT = Path(__file__).resolve().parent.parent
_UMASK = os.umask(0)
os.umask(_UMASK)


@functools.lru_cache(maxsize=None)
def source_digest(name: str) -> str:
    """sha256 of a module's source (``engine.attention``) or of a file path relative to the repo."""
    if "/" in name:
        path = _ROOT / name
    else:
        spec = importlib.util.find_spec(name)  # imports the parent package only (cheap, no torch)
        path = Path(spec.origin)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.lru_cache(maxsize=None)
def versions() -> dict[str, str]:
    """Versions of the libraries that draw or compute, read from package metadata (no import)."""
    found = {}
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


def device_class(device: str) -> str:
    """The device a build's numbers come from, told without importing torch.

    ``auto`` is resolved the way :func:`engine.device.pick` will: CUDA when an NVIDIA device node
    exists, MPS on macOS, else CPU.
    """
    if device != "auto":
        return device
    if os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia/version"):
        return "cuda"
    return "mps" if sys.platform == "darwin" else "cpu"


def key_for(spec, *, fmt: str, device: str, lang: str = "en") -> str:
    """The cache key of one block: 20 hex digits of a sha256.

    Args:
        spec: a parsed block spec (see :mod:`filters.options`).
        fmt: the output family and file type, e.g. ``"latex/pdf"`` or ``"html/svg"``.
        device: the device setting (``cpu``, ``cuda``, ``mps``, ``auto``).
        lang: the language of the figure's labels (``es``, ``en``).
    """
    payload = {
        "kind": spec.kind,
        "lang": lang,
        "options": figure_options(spec),
        "sources": {name: source_digest(name) for name in SOURCES[spec.kind]},
        "versions": versions(),
        "format": fmt,
        "device": device_class(device),
    }
    text = json.dumps(payload, sort_keys=True, default=list, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class Cache:
    """The cache folder. ``entry(key)`` is a complete entry or ``None``; ``publish`` adds one."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

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
