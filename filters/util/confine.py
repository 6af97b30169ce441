"""The files a deck may make the build read: those inside its project, and no others.

A deck names files in three places: its metadata (``bibliography``, ``csl`` …), a pandoc defaults
file its metadata names (``attnslides: {pandoc-defaults: FILE}``: ``include-in-header``,
``template``, ``resource-path`` …) and its pictures (``![x](path)``). pandoc reads them itself,
and Word, PowerPoint and a self-contained HTML file carry them inside, so kpathsea's paranoid mode,
which guards LaTeX, never applies. Every such name is checked here, by one rule
(:meth:`Project.check`); what the lecturer types on the command line is theirs and is not checked.

The project (:func:`deck_project`): the git repository that holds the deck; else the folder the
build runs from, when it holds the deck; else the deck's own folder. A name is inside when it
resolves there (symbolic links followed) from every folder pandoc looks it up from.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

# The command-line option that lifts the confinement (filters.cli.main): named in every refusal.
ALLOW_OPTION = "--allow-outside-files"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")


class OutsideProject(ValueError):
    """A name a deck gives reaches outside its project, or is no file the build may read. The
    message names the key (``include-before-body``, ``a picture``) and the file."""


def deck_project(deck: Path, cwd: Path | None = None) -> Path:
    """The project of ``deck``: the git repository holding its folder; else ``cwd`` (the folder the
    build runs from) when it holds the deck; else the deck's folder. Resolved (no links)."""
    folder = Path(deck).resolve().parent
    repository = next((f for f in (folder, *folder.parents) if (f / ".git").exists()), None)
    if repository is not None:
        return repository
    here = (cwd or Path.cwd()).resolve()
    return here if folder.is_relative_to(here) else folder


def url_scheme(name: str) -> str | None:
    """``"http"``, ``"file"``, ``"data"`` … for a URL; ``None`` for a path (``C:\\x`` included)."""
    found = _SCHEME.match(name)
    return found[1].lower() if found and len(found[1]) > 1 else None


@dataclass(frozen=True)
class Project:
    """A project's folder, and the folders a relative name in it is looked up from (the deck's
    folder, the build's, the resource path: pandoc tries them in turn)."""

    root: Path
    bases: tuple[Path, ...]

    @classmethod
    def of(cls, deck: Path, *extra: Path) -> Project:
        """The project of ``deck`` (:func:`deck_project`), looking names up from the folder the
        build runs from, the deck's folder and ``extra`` folders."""
        return cls(deck_project(deck), (Path.cwd(), Path(deck).resolve().parent, *extra))

    def holds(self, path: Path) -> bool:
        """Whether ``path`` (resolved, links followed) lies in the project."""
        try:
            return Path(path).resolve().is_relative_to(self.root)
        except (OSError, RuntimeError):  # a link loop
            return False

    def check(self, name: str, key: str, *, urls: bool = False, source: str = "the deck") -> None:
        """Refuse ``name``, given as ``key`` by ``source``, unless every place it can mean lies in the
        project: an absolute path (or ``file:`` URL) itself, a relative one from each of
        :attr:`bases` where it exists. A ``data:`` URL is no file; another URL (``https:``) passes
        only when ``urls`` (a link the build does not fetch).

        Raises:
            OutsideProject: naming the key, the name and the project.
        """
        name = str(name)
        scheme = url_scheme(name)
        if scheme == "data" or (scheme not in (None, "file") and urls):
            return
        if scheme not in (None, "file"):
            raise OutsideProject(f"{source} gives {key}: {name}, a URL the build would fetch; it fetches nothing "
                                 f"from the network: put the file in the project ({self.root})")
        if not name:
            return
        # pandoc decodes %-escapes in a local name too (..%2Fsecret is ../secret): both are checked
        paths = {Path(unquote(urlparse(name).path))} if scheme == "file" else {Path(name), Path(unquote(name))}
        if any(self._reaches_outside(path) for path in paths):
            raise OutsideProject(f"{source} gives {key}: {name}, which is outside the project ({self.root}: "
                                 "the deck's git repository, else the folder you build from, else the deck's "
                                 f"folder): the build reads no file there unless you pass {ALLOW_OPTION}")

    def _reaches_outside(self, path: Path) -> bool:
        """An absolute ``path`` outside the project; a relative one that, from one of :attr:`bases`,
        names something (a file, a folder, a link) outside it."""
        if path.is_absolute():
            return not self.holds(path)
        places = [base / path for base in self.bases]
        return any((place.exists() or place.is_symlink()) and not self.holds(place) for place in places)


def regular_file(name: Path, key: str, *, source: str = "the deck") -> Path:
    """``name``, resolved, when it is a regular file: not a device, a pipe or a folder, which would
    block the build or feed it without end.

    Raises:
        OutsideProject: naming the key and the file.
    """
    try:
        resolved = Path(name).resolve()
        mode = os.stat(resolved).st_mode
    except (OSError, RuntimeError) as exc:
        raise OutsideProject(f"{source} gives {key}: {name}, which cannot be read: "
                             f"{getattr(exc, 'strerror', None) or exc}") from None
    if not stat.S_ISREG(mode):
        raise OutsideProject(f"{source} gives {key}: {name}, which is not a regular file (a folder, a device or "
                             "a pipe)")
    return resolved


def names_in(value) -> list[str]:
    """The file names a metadata or defaults value holds: a string, or a list of them (other
    values, which pandoc would refuse, hold none)."""
    if isinstance(value, (str, Path)):
        return [str(value)]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if isinstance(v, (str, Path))]
    return []


# Metadata keys whose values are files pandoc reads (citeproc reads the first three; a
# self-contained HTML file embeds the stylesheets).
METADATA_FILES = ("bibliography", "csl", "citation-abbreviations", "css")


def check_metadata(meta, project: Project, *, source: str = "the deck's metadata") -> None:
    """Refuse a file in ``meta`` (a map, as YAML or the pandoc filter gives it) under :data:`METADATA_FILES`
    that lies outside ``project`` (``css`` may be a link: the build fetches none).

    Raises:
        OutsideProject: naming the key and the file.
    """
    if not isinstance(meta, dict):
        return
    for key in METADATA_FILES:
        for name in names_in(meta.get(key)):
            project.check(name, key, urls=key == "css", source=source)
