"""Files written whole or not at all, their checksums, and the project a build belongs to.

The standard library has no one-call atomic write: a temporary file in the same folder, then a
rename, is the usual recipe (readers see the old file or the new one, never half of one).
"""

from __future__ import annotations

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
    the new one, never half of one."""
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
