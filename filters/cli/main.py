"""The ``attnslides`` command: build decks, start a new one, list options, clean the cache."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path

from engine.device import CHOICES as DEVICES
from filters.blocks.labels import LANGUAGES
from filters.errors import PREFIX
from filters.pipeline.build import FORMATS
from filters.util.processes import guarded


def _decks(args) -> list[Path] | int:
    """The decks a command names (default: slides/*.md), or its exit status when they will not do."""
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
    from filters.util.names import file_name

    stems = [file_name(deck) for deck in decks]
    same = sorted({str(deck) for deck in decks if stems.count(file_name(deck)) > 1})
    if same and getattr(args, "output", None) is None:  # with -o they are one deck, of one name
        print(f"{PREFIX} {', '.join(same)} would write the same files in {args.out}/ (one name, "
              f"{file_name(same[0])}): build them one at a time with --out", file=sys.stderr)
        return 2
    return [Path(deck) for deck in decks]


def _build(args) -> int:
    from filters.pipeline.build import build
    from filters.pipeline.errors import BuildError, report

    decks = _decks(args)
    if isinstance(decks, int):
        return decks
    if args.output is not None:
        return _build_one_of_several(decks, args)
    if len(decks) > 1 and args.parallel != 1:
        return _build_in_parallel(decks, args)
    failed = []
    for deck in decks:
        try:
            build(Path(deck), Path(args.out), to=args.to, device=args.device, execute=not args.no_exec,
                  pandoc_options=args.pandoc_options, confine=not args.allow_outside_files,
                  cores=args.jobs, out_given=args.out_given, keep_going=args.keep_going)
        except BuildError as exc:
            report(exc)
            failed.append(str(deck))
            if not args.keep_going:
                break
    if failed and args.keep_going and len(decks) > 1:
        print(f"{PREFIX} {len(decks) - len(failed)} of {len(decks)} decks built; failed: {', '.join(failed)}",
              file=sys.stderr)
    return 1 if failed else 0


# What ``-o`` may name for each format: the file the build writes (reveal.js: the deck, a folder).
_OUTPUT_SUFFIXES = {"beamer": ".pdf", "latex": ".pdf", "revealjs": ".html", "docx": ".docx", "pptx": ".pptx"}


def _build_one_of_several(decks: list[Path], args) -> int:
    """``-o FILE``: the files named make one deck, read one after the other as pandoc reads several
    inputs, named after FILE (its outputs in ``--out``: ``build/<name>.tex`` …), and the result is
    copied to FILE. A reveal.js deck is a folder: ``-o NAME.html`` names it, ``<out>/NAME-html/``."""
    from filters.pipeline.build import build
    from filters.pipeline.errors import BuildError, report
    from filters.util.files import copy_atomic
    from filters.util.names import file_name

    output = Path(args.output)
    suffix = _OUTPUT_SUFFIXES[args.to]
    if output.suffix.lower() != suffix:
        print(f"{PREFIX} -o {output}: --to {args.to} makes a {suffix} file; name one (-o {output.with_suffix(suffix)})",
              file=sys.stderr)
        return 2
    try:
        result = build(decks[0], Path(args.out), to=args.to, device=args.device, execute=not args.no_exec,
                       pandoc_options=args.pandoc_options, confine=not args.allow_outside_files, cores=args.jobs,
                       out_given=args.out_given, keep_going=args.keep_going, more=tuple(decks[1:]),
                       name=file_name(output))
        if args.to != "revealjs" and output.resolve() != result.resolve():
            output.parent.mkdir(parents=True, exist_ok=True)
            copy_atomic(result, output)
            print(f"{PREFIX} {output}", file=sys.stderr)
    except BuildError as exc:
        report(exc)
        return 1
    except OSError as exc:
        print(f"{PREFIX} -o {output}: cannot write it: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _build_in_parallel(decks: list[Path], args) -> int:
    """Build each deck in a process of its own, ``--parallel`` at once (:mod:`filters.cli.parallel`):
    LaTeX's passes are one core's work, so decks side by side finish sooner."""
    from filters.cli.parallel import build_in_parallel

    options = [*(["--out", args.out] if args.out_given else []), "--to", args.to,
               *(["--device", args.device] if args.device else []),
               *(["--no-exec"] if args.no_exec else []), *(["--traceback"] if args.traceback else []),
               *(["--allow-outside-files"] if args.allow_outside_files else []),
               *(["--keep-going"] if args.keep_going else []),  # a deck's blocks keep going too
               *(["--", *args.pandoc_options] if args.pandoc_options else [])]
    failed, unstarted = build_in_parallel(decks, options, parallel=args.parallel, keep_going=args.keep_going)
    if failed and len(decks) > 1:
        print(f"{PREFIX} {len(decks) - len(failed) - unstarted} of {len(decks)} decks built; failed: "
              f"{', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _watch(args) -> int:
    from filters.cli.watch import watch

    decks = _decks(args)
    if isinstance(decks, int):
        return decks
    try:
        status = watch(decks, Path(args.out), open_viewer=args.open, to=args.to, device=args.device,
                       execute=not args.no_exec, pandoc_options=args.pandoc_options,
                       confine=not args.allow_outside_files, out_given=args.out_given)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM during a build: the way a watch ends, too
        status = 0
    print(f"{PREFIX} watch stopped", file=sys.stderr)
    return status


def _new(args) -> int:
    from filters.cli.starter import starter_deck

    if args.deck.exists():
        print(f"{PREFIX} {args.deck} exists already; choose another name", file=sys.stderr)
        return 1
    args.deck.parent.mkdir(parents=True, exist_ok=True)
    args.deck.write_text(starter_deck(args.lang))
    print(f"{PREFIX} wrote {args.deck}; build it with: attnslides build {args.deck}", file=sys.stderr)
    return 0


def _options(args) -> int:
    import difflib

    from filters.blocks.settings import describe
    from filters.kinds import KINDS

    kind = args.kind.lstrip(".") if args.kind else None
    if kind and kind not in KINDS:
        close = difflib.get_close_matches(kind, KINDS, n=1, cutoff=0.0)
        print(f"{PREFIX} there is no kind '.{kind}'" + (f"; did you mean '.{close[0]}'?" if close else "")
              + f" Kinds: {', '.join('.' + k for k in KINDS)}", file=sys.stderr)
        return 2
    print(describe(KINDS, kind))
    return 0


def _clean(args) -> int:
    from filters.cache.store import Cache

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


_NO_EXEC_HELP = ("never run the deck's code (.run blocks, the filters and Lua reader of a pandoc defaults file it "
                 "names): use a cached result, else show the code")
_ALLOW_HELP = ("let the deck name files outside its project (its git repository, else the folder you build from, "
               "else its own folder) in pictures, metadata and its pandoc defaults file; without it such a file is "
               "refused, naming the key. Options after '--' are yours and never confined")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="attnslides", description="Live attention figures in Pandoc slides.")
    parser.add_argument("--version", action="version", version=f"attnslides {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="build decks (default: slides/*.md) into build/; after '--', pandoc's "
                                "own options (-d defaults.yml, -H, -V, --citeproc, --pdf-engine …)")
    watching = commands.add_parser("watch", help="build decks (default: slides/*.md), then again on every save")
    for command in (build, watching):
        command.add_argument("decks", nargs="*", type=Path, help="Markdown decks")
        command.add_argument("--out", default=None, help="output folder (default: build, which must lie in the "
                             "deck's project once links are followed; a folder you name is yours)")
        command.add_argument("--to", default="beamer", choices=FORMATS, metavar="FORMAT",
                             help="what to make: " + "; ".join(f"{name}: {what}" for name, what in FORMATS.items()))
        command.add_argument("--device", choices=DEVICES, default=None,
                             help="where the engine runs (default: the deck's setting, else cpu)")
        command.add_argument("--no-exec", action="store_true", help=_NO_EXEC_HELP)
        command.add_argument("--allow-outside-files", action="store_true", help=_ALLOW_HELP)
        command.add_argument("--traceback", action="store_true",
                             help="with an error, also show the Python traceback behind it (as ATTNSLIDES_TRACEBACK=1)")
    build.add_argument("-o", "--output", default=None, metavar="FILE",
                       help="build the Markdown files named as one deck, read one after the other as pandoc reads "
                       "several inputs, named after FILE and copied there (its other files go to --out, build/); "
                       "without -o several files are several decks")
    build.add_argument("--keep-going", action="store_true",
                       help="when a block or a deck fails, compute the other blocks (those running finish, "
                       "and are cached) and build the other decks, then list the failures (exit status 1)")
    build.add_argument("--parallel", type=int, default=0, metavar="N",
                       help="decks built at once, each in its own process (default 0: one per core)")
    build.add_argument("--jobs", type=int, default=0, metavar="N",
                       help="cores a deck's figure workers may keep busy (default 0: every core; with several decks "
                       "at once, each deck's share)")
    build.set_defaults(run=_build)
    watching.add_argument("--open", action="store_true", help="open the PDF in the desktop's viewer once")
    watching.set_defaults(run=_watch)

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

    argv = sys.argv[1:] if argv is None else list(argv)
    # after '--': pandoc's own options, passed on to pandoc (attnslides build deck.md -- -d defaults.yml)
    pandoc_options = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    args.pandoc_options = pandoc_options
    if args.command in ("build", "watch"):  # a folder the lecturer names is theirs, even a link out of the project
        args.out_given, args.out = args.out is not None, args.out or "build"

    return _run(args)


def _run(args) -> int:
    """Run the command: ``kill`` stops it as Ctrl-C does; under build and watch, every process they
    start is marked as theirs and killed when they end, even when they are killed
    (:func:`filters.util.processes.guarded`)."""

    def terminated(signum, frame):  # `kill`: stop as Ctrl-C does, with pandoc, the filter and LaTeX
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        with guarded() if args.command in ("build", "watch") else contextlib.nullcontext():
            status = args.run(args)
            sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
            return status
    except KeyboardInterrupt:
        print(f"{PREFIX} interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `attnslides options | head`: the reader has gone; stop quietly (Python's recipe)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush must not fail again
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
