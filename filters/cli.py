"""The ``attnslides`` command: build decks, start a new one, list options, clean the cache."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from engine.device import CHOICES as DEVICES
from filters.build import FORMATS
from filters.errors import PREFIX
from filters.labels import LANGUAGES


def _build(args) -> int:
    from filters.build import BuildError, build

    if args.traceback:
        os.environ["ATTNSLIDES_TRACEBACK"] = "1"  # the filter and its workers read it
    decks = args.decks or sorted(Path("slides").glob("*.md"))
    if not decks:
        print(f"{PREFIX} no decks to build: name them (attnslides build deck.md), or put them in slides/",
              file=sys.stderr)
        return 2
    missing = [deck for deck in decks if not Path(deck).is_file()]
    if missing:
        print(f"{PREFIX} no such deck: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    stems = [Path(deck).stem for deck in decks]
    same = sorted({str(deck) for deck in decks if stems.count(Path(deck).stem) > 1})
    if same:
        print(f"{PREFIX} {', '.join(same)} would write the same files in {args.out}/ (one name, "
              f"{Path(same[0]).stem}): build them one at a time with --out", file=sys.stderr)
        return 2
    failed = []
    for deck in decks:
        try:
            build(Path(deck), Path(args.out), to=args.to, device=args.device, execute=not args.no_exec)
        except BuildError as exc:
            if exc.listed:
                print(exc, file=sys.stderr)
            elif not exc.reported:
                print(f"{PREFIX} {exc}", file=sys.stderr)
            failed.append(str(deck))
            if not args.keep_going:
                break
    if failed and args.keep_going and len(decks) > 1:
        print(f"{PREFIX} {len(decks) - len(failed)} of {len(decks)} decks built; failed: {', '.join(failed)}",
              file=sys.stderr)
    return 1 if failed else 0


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
    import difflib

    from filters.kinds import KINDS
    from filters.options import describe

    kind = args.kind.lstrip(".") if args.kind else None
    if kind and kind not in KINDS:
        close = difflib.get_close_matches(kind, KINDS, n=1, cutoff=0.0)
        print(f"{PREFIX} there is no kind '.{kind}'" + (f"; did you mean '.{close[0]}'?" if close else "")
              + f" Kinds: {', '.join('.' + k for k in KINDS)}", file=sys.stderr)
        return 2
    print(describe(KINDS, kind))
    return 0


def _clean(args) -> int:
    from filters.cache import Cache

    removed = Cache(args.cache).clean()
    print(f"{PREFIX} removed {removed['entries']} cache entries, {removed['figures']} figure files, "
          f"{removed['manifests']} manifests and {removed['folders']} figure folders of deleted decks, "
          f"{removed['temporary']} unfinished entries")
    return 0


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("attnslides")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attnslides", description="Live attention figures in Pandoc slides.")
    parser.add_argument("--version", action="version", version=f"attnslides {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="build decks (default: slides/*.md) into build/")
    build.add_argument("decks", nargs="*", type=Path, help="Markdown decks")
    build.add_argument("--out", default="build", help="output folder (default: build)")
    build.add_argument("--to", default="beamer", choices=FORMATS, metavar="FORMAT",
                       help="what to make: " + "; ".join(f"{name}: {what}" for name, what in FORMATS.items()))
    build.add_argument("--device", choices=DEVICES, default=None,
                       help="where the engine runs (default: the deck's setting, else cpu)")
    build.add_argument("--no-exec", action="store_true",
                       help="never run the deck's code (.run blocks): use a cached result, else show the code")
    build.add_argument("--keep-going", action="store_true",
                       help="when a deck fails, build the others, then list the failures (exit status 1)")
    build.add_argument("--traceback", action="store_true",
                       help="with an error, also show the Python traceback behind it (as ATTNSLIDES_TRACEBACK=1)")
    build.set_defaults(run=_build)

    new = commands.add_parser("new", help="write a starter deck that uses every kind of live block once")
    new.add_argument("deck", type=Path, help="the Markdown file to write, e.g. slides/mi-clase.md")
    new.add_argument("--lang", choices=LANGUAGES, default=LANGUAGES[0], help="the deck's language")
    new.set_defaults(run=_new)

    options = commands.add_parser("options", help="list every block kind and its options")
    options.add_argument("kind", nargs="?", help="one kind, e.g. attention or .attention")
    options.set_defaults(run=_options)

    clean = commands.add_parser("clean", help="remove cached figures and figure files that no deck uses")
    clean.add_argument("--cache", default="build/cache", help="the cache folder (default: build/cache)")
    clean.set_defaults(run=_clean)

    args = parser.parse_args(argv)

    def terminated(signum, frame):  # `kill`: stop as Ctrl-C does, with pandoc, the filter and LaTeX
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"{PREFIX} interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
