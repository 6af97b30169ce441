"""``python -m tools.bench_build``: the edit → PDF loop, measured side by side in one run on the real deck.

Prints four figures against their targets:

(a) warm edit → PDF (one text line changed, every figure cached) ÷ ``pandoc deck.md -t beamer -o
    deck.pdf`` on the same deck with the live blocks removed — target ≤ 0.6. (``-t beamer`` so that
    both sides make the same slides: without it pandoc writes an article, not a deck);
(b) the warm filter pass alone (pandoc → JSON → filter, every figure cached) — target ≤ 0.4 s;
(c) the cold figure phase (the filter on an empty cache) ÷ the same figures each rendered in a
    fresh Python process, one after another, as per-figure tools do — target ≤ 0.25;
(d) peak memory of a cold build, summed over its processes (proportional set size, so pages a
    forked worker shares with its parent count once) — target ≤ 700 MB; and (d') the time of that
    cold build, every figure computed and then LaTeX — target < 60 s.

Timings alternate between the two sides of each ratio and report medians, so a noisy machine
slows both alike. Nothing here is a test: these machines are too noisy for timed assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from filters.pandoc.scan import live_blocks, strip_live_blocks
from filters.pipeline.build import filter_command
from filters.util.pandoc import pandoc_path
from tools import ROOT

BIN = Path(sys.executable).parent

ONE_FIGURE = """
import sys, json, pathlib
from filters.kinds import KINDS
from filters.blocks.options import parse_options
from filters.figures.entry import produce
name, attributes, text, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], pathlib.Path(sys.argv[4])
out.mkdir(exist_ok=True)
kind = KINDS[name]
produce(kind, parse_options(kind.options, attributes, text), out, ext="pdf", device="cpu", lang="es")
"""


def timed(command, **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, **kwargs)
    return time.perf_counter() - start


def peak_pss(command, **kwargs) -> tuple[float, float]:
    """Run ``command``; return (seconds, peak summed PSS of its process tree in MB), sampled every 20 ms."""
    process = psutil.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    peak, start = 0, time.perf_counter()
    while process.poll() is None:
        total = 0
        for p in [process, *process.children(recursive=True)]:
            try:
                total += p.memory_full_info().pss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
        peak = max(peak, total)
        time.sleep(0.02)
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command)
    return time.perf_counter() - start, peak / 2**20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("deck", nargs="?", default=str(ROOT / "slides" / "transformers-1.md"))
    parser.add_argument("--repeat", type=int, default=3, help="timings per side (median reported)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="attnslides-bench-"))
    deck_text = Path(args.deck).read_text()
    deck = work / "deck.md"
    deck.write_text(deck_text)
    plain = work / "plain.md"
    plain.write_text(strip_live_blocks(deck_text))
    env = dict(os.environ, PANDOC_VERSION=subprocess.run([pandoc_path(), "--version"], capture_output=True, text=True)
               .stdout.split()[1])
    attnslides = [str(BIN / "attnslides"), "build", "deck.md"]
    pandoc, filt = pandoc_path(), filter_command()
    blocks = [(block.kind, block.attributes, block.body) for block in live_blocks(deck_text)]
    print(f"deck: {args.deck} ({len(blocks)} live blocks); {os.cpu_count()} cores; medians of {args.repeat}")

    # (d) and the cache for (a): one cold build, its memory sampled
    cold_build_s, peak_mb = peak_pss(attnslides, cwd=work, env=env)

    # (a) warm edit -> PDF  vs  plain pandoc -> PDF, alternating
    ours, theirs = [], []
    line = next(text for text in deck_text.splitlines() if text.startswith("* "))
    for r in range(args.repeat):
        deck.write_text(deck_text.replace(line, f"{line} (edición {r})", 1))
        ours.append(timed(attnslides, cwd=work, env=env))
        theirs.append(timed([pandoc, "plain.md", "-t", "beamer", "-o", "plain.pdf"], cwd=work))
    a = statistics.median(ours) / statistics.median(theirs)

    # (b) warm filter pass alone: pandoc -> JSON, then the filter
    (work / "deck.json").write_text(subprocess.run([pandoc, "deck.md", "-s", "-t", "json"], cwd=work, capture_output=True,
                                                   text=True, check=True).stdout)
    warm = [timed(f"{pandoc} deck.md -s -t json | {filt} beamer > /dev/null", shell=True, cwd=work, env=env)
            for _ in range(args.repeat)]
    b = statistics.median(warm)

    # (c) cold figure phase vs one fresh process per figure, alternating
    cold, fresh = [], []
    for _ in range(max(2, args.repeat - 1)):
        shutil.rmtree(work / "build" / "cache", ignore_errors=True)
        cold.append(timed(f"{filt} beamer < deck.json > /dev/null", shell=True, cwd=work, env=env))
        fresh.append(sum(timed([sys.executable, "-c", ONE_FIGURE, kind, json.dumps(attrs), text, str(work / f"one-{n}")],
                               cwd=ROOT)
                         for n, (kind, attrs, text) in enumerate(blocks)))
    c = statistics.median(cold) / statistics.median(fresh)

    def row(label, value, target, unit=""):
        verdict = "meets" if value <= target else "MISSES"
        print(f"  {label:<62} {value:7.2f}{unit}  (target ≤ {target}{unit}: {verdict})")

    print("results:")
    row(f"(a) warm edit→PDF {statistics.median(ours):.2f} s ÷ pandoc -t beamer→PDF {statistics.median(theirs):.2f} s", a, 0.6)
    row("(b) warm filter pass (pandoc → JSON → filter), seconds", b, 0.4, " s")
    row(f"(c) cold figure phase {statistics.median(cold):.2f} s ÷ fresh process per figure "
        f"{statistics.median(fresh):.2f} s", c, 0.25)
    row(f"(d) peak memory of a cold build ({cold_build_s:.1f} s), MB PSS", peak_mb, 700, " MB")
    row("(d') the cold build itself (every figure computed, then LaTeX), seconds", cold_build_s, 60, " s")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
