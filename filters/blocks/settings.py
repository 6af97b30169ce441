"""Document-wide settings (``attnslides:`` metadata keys that belong to no block kind), reading the
``attnslides:`` metadata, and the help of every option (``attnslides options``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.device import CHOICES as DEVICES
from filters.blocks.labels import LANGUAGES
from filters.blocks.options import convert, keys_of, normalise_key, option, suggest
from filters.blocks.parsers import as_bool, as_choice, as_folder, as_int, as_str, optional
from filters.errors import BlockError

# LaTeX's font sizes a deck's code may take on a Beamer slide (``code-size``), smallest first.
CODE_SIZES = ("tiny", "scriptsize", "footnotesize", "small", "normalsize")


@dataclass(frozen=True)
class Settings:
    """Document-wide settings: ``attnslides:`` metadata keys that belong to no block kind."""

    figures_dir: str = option("build/figures", as_folder,
                              help="where figures and their JSON data are written (a folder inside the project)")
    cache_dir: str = option("build/cache", as_folder, help="the content-addressed cache of figures (inside the project)")
    device: str = option("cpu", as_choice(*DEVICES), help=f"where the engine runs: {', '.join(DEVICES)}")
    lang: str | None = option(None, optional(as_choice(*LANGUAGES)),
                              help=f"language of figure labels: {' or '.join(LANGUAGES)} (auto: the deck's lang)")
    jobs: int = option(0, as_int(0, 64), help="worker processes for figures that miss the cache (0: one per core)")
    pdf_engine: str = option("auto", as_choice("auto", "pdflatex", "lualatex", "xelatex"),
                             help="the LaTeX engine: auto takes pdflatex (the fastest), or lualatex, with fallback "
                                  "fonts, when the text has characters pdflatex cannot set (Chinese, emoji, Greek …) "
                                  "or the deck loads fontspec; pandoc's --pdf-engine after '--' wins")
    pandoc_defaults: str = option("", as_str, help="a pandoc defaults file for `attnslides build` (relative to the "
                                  "deck's folder), read before the options given after '--'")
    overflow: str = option("error", as_choice("error", "warn"),
                           help="a frame whose content LaTeX cannot fit (more than 2 pt): error stops the build, "
                                "warn only says so")
    code_size: str = option("normalsize", as_choice(*CODE_SIZES),
                            help="the LaTeX size of code on a Beamer slide (a .run block's echo and printing, any "
                                 "code block): normalsize holds 53 characters a line in 4:3 (69 in 16:9), small 58, "
                                 "footnotesize 65, scriptsize 72 (93), tiny 96")
    execute: bool = option(True, as_bool, help="run the deck's own code (.run blocks); false: show the code of "
                                               "those without a cached result, as `attnslides build --no-exec` does")



def read_metadata(meta: Any, kinds: Mapping[str, Any]) -> tuple[Settings, dict[str, dict[str, Any]]]:
    """Split ``attnslides:`` metadata into :class:`Settings` and per-kind raw defaults.

    Args:
        meta: the ``attnslides:`` metadata, as panflute gives it.
        kinds: the registry, name → :class:`filters.kind.Kind`.

    Raises:
        BlockError: for a key that is no setting, no kind and no option of any kind.
    """
    if meta is None or meta == "":
        meta = {}
    if not isinstance(meta, dict):
        raise BlockError(f"'attnslides:' must hold 'key: value' settings and options, got {meta!r}")
    settings_keys = keys_of(Settings)
    options = {name: keys_of(kind.options) for name, kind in kinds.items()}
    kind_defaults: dict[str, dict[str, Any]] = {name: {} for name in kinds}
    flat: dict[str, Any] = {}
    settings_raw: dict[str, Any] = {}
    for key, value in meta.items():
        name = normalise_key(key)
        if key in kinds:
            if not isinstance(value, dict):
                raise BlockError(f"'attnslides: {key}:' must hold options of .{key} blocks", key=key)
            convert(kinds[key].options, value, f"metadata 'attnslides: {key}:'")  # checked now, parsed per block
            kind_defaults[key] = {normalise_key(k): v for k, v in value.items()}
        elif name in settings_keys:
            settings_raw[name] = value
        elif any(name in own for own in options.values()):
            flat[name] = value
        else:
            valid = set(settings_keys) | set(kinds) | {k for own in options.values() for k in own}
            raise BlockError(f"unknown key in the 'attnslides:' metadata{suggest(name, valid)}", key=str(key))
    settings = Settings(**convert(Settings, settings_raw, "metadata 'attnslides:'"))
    for name, own in options.items():
        kind_defaults[name] = {**{k: v for k, v in flat.items() if k in own}, **kind_defaults[name]}
    return settings, kind_defaults


def _shown(default: Any) -> Any:
    return "auto" if default is None else list(default) if isinstance(default, tuple) else default


def describe(kinds: Mapping[str, Any], only: str | None = None) -> str:
    """Help text of every option (of one kind, or of all), for ``attnslides options``.

    A kind's own options come first, then the ones it shares with others, then those of the slide
    (caption, alt text, height)."""
    lines = []
    for name, kind in kinds.items():
        if only and name != only:
            continue
        lines.append(f".{name}: {kind.summary}")
        own = set(vars(kind.options).get("__annotations__", {}))
        fields = sorted(dataclasses.fields(kind.options),
                        key=lambda f: (not f.metadata["figure"], f.name not in own))
        for f in fields:
            lines.append(f"    {f.name:<14} {f.metadata['help']} (default: {_shown(f.default)})")
    if not only:
        lines.append("document settings (metadata 'attnslides:'):")
        for f in dataclasses.fields(Settings):
            lines.append(f"    {f.name.replace('_', '-'):<14} {f.metadata['help']} (default: {_shown(f.default)})")
    return "\n".join(lines)
