"""``python -m tools.bench_rebuild``: a one-word edit → PDF, against one LaTeX pass, side by side.

Prints, for the real deck and for the deck repeated four times:

(e) a warm one-word edit → PDF by ``attnslides build`` (a fresh process: pandoc, the filter, LaTeX
    from the precompiled preamble) ÷ one ``pdflatex`` pass over the same ``.tex`` with the normal
    preamble — target ≤ 1.0 (a rebuild no slower than LaTeX alone);
(f) the same edit saved under ``attnslides watch`` (from the save to the new PDF) ÷ the same pass —
    target ≤ 0.8;
(g) both again for the deck four times over — the ratios must hold: cost grows no faster than the deck.

Each repetition edits one word of a list item, then times both sides one after the other, so a
noisy machine slows both alike; medians are reported. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tools import ROOT

BIN = Path(sys.executable).parent
HANDED_ON = (".aux", ".nav", ".snm", ".toc", ".out")


def repeated(text: str, times: int) -> str:
    """The deck with its slides ``times`` over, every block's ``#id`` made unique per copy."""
    front, body = re.match(r"(---\n.*?\n---\n)(.*)", text, re.S).groups()
    copies = [body] + [re.sub(r"^(```\{[^}]*?#)([\w:.-]+)", rf"\g<1>\g<2>-copia{n}", body, flags=re.M)
                       for n in range(2, times + 1)]
    return front + "\n".join(copies)


def one_pass(build: Path) -> float:
    """One pdflatex pass over a copy of the deck's ``.tex`` (its normal preamble, no format), with
    the deck's auxiliary files, as a lecturer running LaTeX alone would."""
    for suffix in (".tex", *HANDED_ON):
        if (build / f"deck{suffix}").exists():
            shutil.copy(build / f"deck{suffix}", build / f"alone{suffix}")
    start = time.perf_counter()
    subprocess.run(["pdflatex", "-interaction=batchmode", "alone.tex"], cwd=build, capture_output=True)
    return time.perf_counter() - start


class Watching:
    def __init__(self, work: Path):
        self.process = subprocess.Popen([str(BIN / "attnslides"), "watch", "deck.md"], cwd=work, text=True,
                                        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        env=dict(os.environ, PYTHONUNBUFFERED="1"))
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for("watching")

    def _read(self):
        for line in self.process.stderr:
            self.lines.put((time.perf_counter(), line))

    def wait_for(self, text: str) -> float:
        while True:
            when, line = self.lines.get(timeout=600)
            if text in line:
                return when

    def stop(self):
        self.process.terminate()
        self.process.wait()


def measure(deck_text: str, repeat: int) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="attnslides-bench-"))
    deck = work / "deck.md"
    item = next(line for line in deck_text.splitlines() if line.startswith("* "))
    deck.write_text(deck_text)
    subprocess.run([str(BIN / "attnslides"), "build", "deck.md"], cwd=work, check=True, capture_output=True)
    build_s, watch_s, alone_s = [], [], []
    for r in range(repeat):
        deck.write_text(deck_text.replace(item, f"{item} (b{r})", 1))
        start = time.perf_counter()
        subprocess.run([str(BIN / "attnslides"), "build", "deck.md"], cwd=work, check=True, capture_output=True)
        build_s.append(time.perf_counter() - start)
        alone_s.append(one_pass(work / "build"))
    watching = Watching(work)
    try:
        for r in range(repeat):
            time.sleep(0.3)
            start = time.perf_counter()
            deck.write_text(deck_text.replace(item, f"{item} (w{r})", 1))
            watch_s.append(watching.wait_for("build/deck.pdf (") - start)
            alone_s.append(one_pass(work / "build"))
    finally:
        watching.stop()
        shutil.rmtree(work, ignore_errors=True)
    alone = statistics.median(alone_s)
    return {"build": statistics.median(build_s), "watch": statistics.median(watch_s), "alone": alone,
            "e": statistics.median(build_s) / alone, "f": statistics.median(watch_s) / alone}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("deck", nargs="?", default=str(ROOT / "slides" / "transformers-1.md"))
    parser.add_argument("--repeat", type=int, default=5, help="edits timed per side (median reported)")
    args = parser.parse_args(argv)
    text = Path(args.deck).read_text()
    print(f"deck: {args.deck}; {os.cpu_count()} cores; medians of {args.repeat}")
    results = {1: measure(text, args.repeat), 4: measure(repeated(text, 4), args.repeat)}

    def row(label, value, target):
        print(f"  {label:<84} {value:5.2f}  (target ≤ {target}: {'meets' if value <= target else 'MISSES'})")

    print("results:")
    for times, m in results.items():
        size = "the deck" if times == 1 else "(g) the deck ×4"
        row(f"(e) {size}: attnslides build {m['build']:.2f} s ÷ one pdflatex pass {m['alone']:.2f} s", m["e"], 1.0)
        row(f"(f) {size}: attnslides watch {m['watch']:.2f} s ÷ one pdflatex pass {m['alone']:.2f} s", m["f"], 0.8)
    return 0


if __name__ == "__main__":
    sys.exit(main())
