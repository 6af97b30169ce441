"""The registry of live block kinds: one file each in this folder, found, checked and listed here.

Every module here whose name does not start with ``_`` is a kind and ends with ``KIND = Kind(...)``
(see :class:`filters.kind.Kind`); modules starting with ``_`` hold what several kinds share. Adding
a kind is adding its file: nothing else in the filter names a kind. A kind that lacks a piece (a
caption in some language, a ``draw`` for a figure …) stops the import with a :class:`KindError`
that names it.

Importing the registry imports every kind's file, and those import neither torch nor matplotlib
(they do so inside ``compute`` and ``draw``): a build whose figures are all cached never pays for them.
"""

from __future__ import annotations

import importlib
import pkgutil

from filters.blocks.kind import Kind, KindError


def _discover() -> dict[str, Kind]:
    kinds: dict[str, Kind] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        kind = getattr(module, "KIND", None)
        if not isinstance(kind, Kind):
            raise KindError(f"{module.__name__} is in filters/kinds/ but defines no KIND = Kind(...)")
        problems = kind.problems()
        if info.name != kind.name.replace("-", "_"):
            problems.append(f"its file is {info.name}.py, but a kind named '{kind.name}' lives in "
                            f"{kind.name.replace('-', '_')}.py")
        if problems:
            raise KindError(f"kind .{kind.name} ({module.__name__}) is incomplete: " + "; ".join(problems))
        if kind.name in kinds:
            raise KindError(f"two modules define the kind .{kind.name}: {kinds[kind.name].module}, {module.__name__}")
        kinds[kind.name] = kind
    return kinds


KINDS: dict[str, Kind] = _discover()
