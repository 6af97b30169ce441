"""The store of the content-addressed cache of figures and their data (pandoc-plot's idea).

An entry is a folder, ``build/cache/<key>/`` (its key: :mod:`filters.cache.keys`; what it holds:
:mod:`filters.figures.entry`), with the SHA-256 of each of its files, checked on every read. It is
written in a temporary folder and renamed into place: a build killed half-way leaves at most a
``.tmp-*`` folder, which no build trusts, and two builds that render the same entry at once both end
with one complete entry. One manifest per deck and output format says which entries and figure
files the deck uses, so that ``attnslides clean`` removes only what no deck uses, and only what
attnslides wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from filters.blocks.parsers import BUILD_FOLDER
from filters.cache.sources import Sources
from filters.errors import PREFIX
from filters.figures.entry import DEPENDS
from filters.util.files import file_sha256, inside_project, umask, write_atomic

_ENTRY = re.compile(r"[0-9a-f]{20}")  # the name of a cache entry: 20 hex digits of a key

_FIGURE_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\.(?:json|pdf|svg|png)")


def _written_by_us(file: Path, folder: Path, project: Path) -> bool:
    """Whether ``file`` is one a build writes: a figure or its data, directly in the deck's folder,
    which is inside the project (a record that points elsewhere, edited or shared, deletes nothing)."""
    return (file.parent == folder and bool(_FIGURE_FILE.fullmatch(file.name)) and not file.is_symlink()
            and inside_project(folder, project))


def project_of(cache_root: Path) -> Path:
    """The project a cache folder belongs to, from the cache's own place: every build writes its
    cache inside ``<project>/build/`` (:func:`filters.blocks.parsers.as_folder`), so the folder above
    the nearest ``build`` folder holding it; a cache elsewhere: the current folder. Not from what a
    manifest says, which may be edited or shared: ``clean`` deletes only inside this folder."""
    root = cache_root.resolve()
    return next((folder.parent for folder in root.parents if folder.name == BUILD_FOLDER), Path.cwd().resolve())



def _well_formed(manifest) -> bool:
    """A manifest as builds write it: a map whose fields have their types (else no build and no
    ``clean`` trusts it)."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("deck"), str):
        return False
    lists = all(isinstance(manifest.get(k, []), list) and all(isinstance(v, str) for v in manifest.get(k, []))
                for k in ("keys", "figures", "written"))
    return lists and isinstance(manifest.get("folder", ""), (str, type(None)))


# A temporary folder or an unnamed entry younger than this may belong to a build still running:
# `clean` leaves it alone (a figure has at most 300 s: filters.workers.limits).
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


def _deck_file(manifest: dict, project: Path) -> Path | None:
    """The absolute path of a manifest's deck file, or ``None`` when the deck has no file (read under
    ``pandoc -F``: it is never taken for gone). Older manifests hold no ``path``: their ``identity``
    is the deck's absolute path, else the deck's path is the project's."""
    for given in (manifest.get("path"), manifest.get("identity")):
        if isinstance(given, str) and given.endswith(".md") and Path(given).is_absolute():
            return Path(given)
    return project / manifest["deck"] if manifest["deck"].endswith(".md") else None


class Cache:
    """The cache folder. ``entry(key)`` is a complete entry or ``None``; ``publish`` adds one."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.sources = Sources(self.root / ".sources.json")
        self._digests: dict[tuple[str, int, int], str] = {}  # (file, size, time) → SHA-256

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
            changed = self._changed_input(folder)
            if changed is None:
                return folder
            print(f"{PREFIX} {changed}: the block runs again (cache entry {key})", file=sys.stderr)
        else:
            print(f"{PREFIX} warning: the cached figure {key} {problem}: it is computed again", file=sys.stderr)
        self.discard(key)
        return None

    def _changed_input(self, folder: Path) -> str | None:
        """What changed among the files of the project that the entry's ``.run`` block read
        (:data:`DEPENDS`), or ``None``. A record that names a file outside the project, or that
        cannot be read, is not trusted: its block runs again."""
        try:
            record = json.loads((folder / DEPENDS).read_text())
        except FileNotFoundError:
            return None  # it read no file of the project
        except (OSError, ValueError):
            record = None
        if not isinstance(record, dict):
            return "its record of the files it read cannot be read"
        project = project_of(self.root)
        for name, digest in record.items():
            path = project / name
            if not inside_project(path, project):
                return f"its record names a file outside the project ({name})"
            if self._digest(path) != digest:
                return f"{name} changed since the block that read it ran" if digest else f"{name} appeared"
        return None

    def _digest(self, path: Path) -> str | None:
        """The SHA-256 of the file ``path`` (``None``: no such file), remembered while its size and
        time stay the same: a build asks for each entry more than once."""
        try:
            info = path.stat()
        except OSError:
            return None
        if not path.is_file():
            return None  # a folder, a device, a pipe: never read here
        seen = (str(path), info.st_size, info.st_mtime_ns)
        if seen not in self._digests:
            self._digests[seen] = file_sha256(path)
        return self._digests[seen]

    def read(self, key: str) -> tuple[Path, dict]:
        """The folder of the complete entry ``key`` and its data."""
        folder = self.entry(key)
        return folder, json.loads((folder / "data.json").read_text())

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
        os.chmod(staging, 0o777 & ~umask())
        files = sorted(p for p in staging.iterdir() if p.name != CHECKSUMS)
        (staging / CHECKSUMS).write_text(json.dumps({p.name: file_sha256(p) for p in files}, indent=1))
        for path in staging.iterdir():
            os.chmod(path, 0o666 & ~umask())
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
        # the deck's file by its absolute path: `clean`, run from any folder, tells a live deck from a gone one
        path_ = str(Path(deck).resolve()) if deck.endswith(".md") else ""
        manifest = {"deck": deck, "path": path_, "identity": identity, "format": family, "folder": str(folder or ""),
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
        keys, used, written, folders = self._in_use(removed)
        for file in written - used:
            if file.is_file():
                file.unlink()
                removed["figures"] += 1
        for folder in folders:
            if folder.is_dir() and not any(folder.iterdir()) and folder not in {Path(f).parent for f in used}:
                folder.rmdir()
                removed["folders"] += 1
        if self.root.is_dir():
            self._clean_entries(keys, removed)
        return removed

    def _in_use(self, removed: dict[str, int]) -> tuple[set[str], set[Path], set[Path], set[Path]]:
        """From the manifests: the keys and figure files decks use, the figure files builds wrote, and
        the decks' figure folders (absolute paths); the manifests of decks whose file is gone are
        removed. Relative paths in a manifest are the project's (:func:`project_of`), never those of
        the folder ``clean`` runs from."""
        keys, used, written, folders = set(), set(), set(), set()
        project = project_of(self.root)
        for path, manifest in self._manifests():
            deck = _deck_file(manifest, project)
            folder = project / manifest["folder"] if manifest.get("folder") else None
            if folder is not None and inside_project(folder, project):
                folders.add(folder)
            # only what a build wrote into its deck's folder, of the types it writes: a record that
            # names anything else (edited, or from an old version) deletes nothing
            written.update(f for f in (project / w for w in manifest.get("written", manifest.get("figures", [])))
                           if folder is not None and _written_by_us(f, folder, project))
            if deck is not None and not deck.exists():
                path.unlink()
                removed["manifests"] += 1
                continue
            keys.update(manifest.get("keys", []))
            used.update(project / f for f in manifest.get("figures", []))
        return keys, used, written, folders

    def _clean_entries(self, keys: set[str], removed: dict[str, int]) -> None:
        """Remove entries no deck uses and temporary folders, older than :data:`CLEAN_GRACE_S`."""
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
