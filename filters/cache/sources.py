"""What the code of each of our modules brings to a cache key: the digest of its source with the
text for people left out, and the imports of ours it makes (the closure of a kind's code).

The rule for "text for people" is :data:`TEXT_FOR_PEOPLE`, enforced here and nowhere else:
docstrings, comments (never in a syntax tree), the keyword arguments it names (an option's
``help=``, a kind's default ``captions=`` and starter-deck ``examples=``) and the module-level
constants it names (a kind's ``EXAMPLES``). Editing any of those redraws nothing; editing anything
else in a module a kind runs redraws that kind's figures.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
from pathlib import Path

from filters.util.files import write_atomic

# The packages whose source is part of a key; imports of anything else are covered by versions.
_OURS = ("engine", "filters")

# Text for people, never drawn or computed with, left out of a source's digest: keyword arguments
# with these names (filters.blocks.options.option's help=, filters.blocks.kind.Kind's captions= and
# examples=) and module-level constants with these names (each kind's EXAMPLES).
TEXT_FOR_PEOPLE = {"keywords": ("help", "captions", "examples"), "constants": ("EXAMPLES",)}


class _WithoutTextForPeople(ast.NodeTransformer):
    """Drops docstrings and what :data:`TEXT_FOR_PEOPLE` names from a syntax tree."""

    def visit_Module(self, node: ast.Module):
        node.body = [statement for statement in node.body
                     if not _assigns(statement, TEXT_FOR_PEOPLE["constants"])]
        return self._drop_docstring(node)

    def _drop_docstring(self, node):
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
        return self.generic_visit(node)

    visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _drop_docstring

    def visit_Call(self, node: ast.Call):
        node.keywords = [k for k in node.keywords if k.arg not in TEXT_FOR_PEOPLE["keywords"]]
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


def module_file(name: str) -> Path | None:
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
            raw = module_file(name).read_bytes()
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
            if module_file(module) is not None:
                todo += [_resolve(base, alias) for base, alias in self._entry(module)["imports"]]
        return tuple(sorted(m for m in seen if module_file(m) is not None))

    def save(self) -> None:
        """Write the record, if anything in it changed (and there is a cache folder to hold it)."""
        if self._changed and self.memo is not None and self.memo.parent.is_dir():
            write_atomic(self.memo, json.dumps(self._known, indent=0, sort_keys=True).encode())
            self._changed = False



_IN_MEMORY = Sources()  # for keys computed without a cache folder (tests, tools)
