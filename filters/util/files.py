"""Files written whole or not at all, their checksums, and the project a build belongs to.

The standard library has no one-call atomic write: a temporary file in the same folder, then a
rename, is the usual recipe (readers see the old file or the new one, never half of one). It also
never writes through a symbolic link: a rename replaces a link at the file's name instead of
following it, so a link a deck's repository ships (``build/deck.docx -> ~/.bashrc``) is replaced,
its target untouched. The folders a build writes into are checked once, by
:func:`check_folder`: one a link leads out of the project is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


def umask() -> int:
    """The process's file-creation mask (read once, at import): files for students keep its modes."""
    return _UMASK


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex: cache keys, entries' checksums, LaTeX's inputs."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: readers see the old file or
    the new one, never half of one; a symbolic link at ``path`` is replaced, never followed."""
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
    if target.is_symlink() or not (target.is_file() and target.read_bytes() == data):
        write_atomic(target, data)


def open_lock(path: Path) -> int:
    """A file descriptor of the lock file ``path`` (read-write, created when missing, never
    truncated), opened without following a symbolic link at ``path``: a link there (which no build
    makes) is replaced by a file, its target untouched."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, flags, 0o666)
    except OSError:
        if not os.path.islink(path):
            raise
    os.unlink(path)  # a link at the lock's name: replaced, as write_atomic replaces one
    return os.open(path, flags | os.O_EXCL, 0o666)


def drop_links(folder: Path, stem: str) -> list[str]:
    """Delete the symbolic links (to anything but a folder) in ``folder`` whose names are those of
    the files a build of the deck named ``stem`` writes there (``stem.tex``, ``stem-frames.log``,
    ``.stem.lock`` …): LaTeX and pandoc open their outputs by name, following a link a deck's
    repository shipped. Returns the names deleted."""
    dropped = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return dropped
    for entry in entries:
        name = entry.name
        ours = name == stem or name.startswith((f"{stem}.", f"{stem}-", f".{stem}."))
        if ours and entry.is_symlink() and not os.path.isdir(entry.path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
            dropped.append(name)
    return dropped


class WritesOutside(ValueError):
    """A folder the build would write into leads out of the project through a symbolic link."""


def check_folder(folder: Path, project: Path, what: str, *, within: tuple[Path | None, ...] = ()) -> None:
    """Refuse ``folder`` (relative: to the folder the build runs from) when it is named inside
    ``project`` but resolves outside it (and outside each of ``within``: folders the lecturer named):
    a symbolic link a deck's repository ships (``build -> /elsewhere``) would have the build
    write there. A folder named outside the project is no repository's to ship: not checked.

    Raises:
        WritesOutside: naming ``what`` (``the output folder``, ``figures-dir`` …), the folder and the link.
    """
    root = Path(project).resolve()
    named = Path(os.path.abspath(folder))
    if not named.is_relative_to(root):
        return
    resolved = named.resolve()
    if any(resolved.is_relative_to(Path(place).resolve()) for place in (root, *within) if place is not None):
        return
    downward = [p for p in reversed((named, *named.parents)) if p.is_relative_to(root)]
    link = next((p for p in downward if p.is_symlink() and not p.resolve().is_relative_to(root)), named)
    target = os.readlink(link) if link.is_symlink() else resolved
    raise WritesOutside(f"{what} {folder} leads out of the project ({root}) through the symbolic link {link} -> "
                        f"{target}: the build writes nothing outside the project; delete the link, or name an output "
                        "folder of your own with --out")


def project_root() -> Path:
    """The project a build belongs to: the git repository holding the folder the build runs from,
    else that folder. LaTeX may read pictures anywhere in it (:mod:`filters.latex.env`)."""
    here = Path.cwd().resolve()
    return next((folder for folder in (here, *here.parents) if (folder / ".git").exists()), here)


def inside_project(folder: Path, project: Path | None = None) -> bool:
    """Whether ``folder`` is inside ``project`` (default: the folder the build runs from) and is not
    that folder; a relative ``folder`` is taken from the folder the build runs from."""
    try:
        resolved, project = folder.resolve(), (project or Path.cwd()).resolve()
    except OSError:
        return False
    return resolved != project and resolved.is_relative_to(project)
