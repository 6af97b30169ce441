"""The ``attnslides`` command: build decks, start a new one, list options, clean the cache."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.device import CHOICES as DEVICES
from filters.errors import PREFIX
from filters.labels import LANGUAGES


def _build(args) -> int:
    from filters.build import BuildError, build

    decks = args.decks or sorted(Path("slides").glob("*.md"))
    for deck in decks:
        try:
            build(Path(deck), Path(args.out), to=args.to, device=args.device, execute=not args.no_exec)
        except BuildError as exc:
            if not exc.reported:
                print(f"{PREFIX} {exc}", file=sys.stderr)
            return 1
    return 0


def _new(args) -> int:
    from filters.starter import starter_deck

    if args.deck.exists():
        print(f"{PREFIX} {args.deck} exists already; choose another name", file=sys.stderr)
        return 1
    args.deck.parent.mkdir(parents=True, exist_ok=True)
    args.deck.write_text(starter_deck(args.lang))
    print(f"{PREFIX} wrote {args.deck}; build it with: attnslides build {args.deck}", file=sys.stderr)
    return 0


def _options(args) -> int:
    from filters.kinds import KINDS
    from filters.options import describe

    print(describe(KINDS, args.kind))
    return 0


def _clean(args) -> int:
    from filters.cache import Cache

    removed = Cache(args.cache).clean()
    print(f"{PREFIX} removed {removed['entries']} cache entries, {removed['figures']} figure files, "
          f"{removed['manifests']} manifests of deleted decks, {removed['temporary']} unfinished entries")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attnslides", description="Live attention figures in Pandoc slides.")
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="build decks (default: slides/*.md) into build/")
    build.add_argument("decks", nargs="*", type=Path, help="Markdown decks")
    build.add_argument("--out", default="build", help="output folder (default: build)")
    build.add_argument("--to", default="beamer", help="pandoc output format: beamer (PDF) or revealjs (HTML)")
    build.add_argument("--device", choices=DEVICES, default=None,
                       help="where the engine runs (default: the deck's setting, else cpu)")
    build.add_argument("--no-exec", action="store_true",
                       help="never run the deck's code (.run blocks): use a cached result, else show the code")
    build.set_defaults(run=_build)

    new = commands.add_parser("new", help="write a starter deck that uses every kind of live block once")
    new.add_argument("deck", type=Path, help="the Markdown file to write, e.g. slides/mi-clase.md")
    new.add_argument("--lang", choices=LANGUAGES, default=LANGUAGES[0], help="the deck's language")
    new.set_defaults(run=_new)

    options = commands.add_parser("options", help="list every block kind and its options")
    options.add_argument("kind", nargs="?", help="one kind, e.g. attention")
    options.set_defaults(run=_options)

    clean = commands.add_parser("clean", help="remove cached figures and figure files that no deck uses")
    clean.add_argument("--cache", default="build/cache", help="the cache folder (default: build/cache)")
    clean.set_defaults(run=_clean)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"{PREFIX} interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
