"""What the pretrained model costs a build: loading it once per worker, then one forward per figure.

Run ``python -m tools.bench_pretrained`` (``make bench``). It prints, side by side:

* **cold**, in a fresh Python process (as a new worker starts): the time to import torch and the
  engine, :func:`engine.pretrained.load` (of which the SHA-256 of the 90 MB weights file), the first
  forward pass, and the process's peak resident memory (``ru_maxrss``) before and after loading;
* **warm**, in this process once loaded: the median time of one forward pass of a 12-token sentence
  (what one real-model figure computes), of a batch of 8 sentences, of :func:`engine.pretrained.embed`,
  and of a whole figure as a worker makes it (:func:`filters.figures.entry.produce`, PDF): one
  ``.head-view`` and one ``.model-view`` of all 6 × 12 heads.

The goal (issue 20): a real-model figure in a warm worker within 2 s on 2 cores, the model loaded
once per worker. The bench runs on ``--threads`` CPU threads (default 2, as on the build machine).
It needs the installed model (``make setup``) and says so when it is missing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from tools import ROOT

SENTENCE = "The animal didn't cross the street because it"  # 12 tokens with [CLS] and [SEP]
BATCH = [SENTENCE, "Attention is all you need.", "El gato se sentó sobre la alfombra.", "a",
         "The quick brown fox jumps over the lazy dog", "Heads that look at the previous token",
         "[CLS] is where many heads park their weight", "it was too tired"]
MiB = 2**20

# Runs in a fresh interpreter: every time there is a first time.
_COLD = """
import json, resource, sys, time
def peak():  # bytes; ru_maxrss is KiB on Linux, bytes on macOS
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024
t0 = time.perf_counter()
import torch
torch.set_num_threads({threads})
import engine.pretrained as P
t1 = time.perf_counter()
before = peak()
folder = P.installed_folder()
t2 = time.perf_counter()
model = P.load()
t3 = time.perf_counter()
P.sha256(folder / "model.safetensors")  # what load() spent on the check
t4 = time.perf_counter()
model({sentence!r})
t5 = time.perf_counter()
print(json.dumps(dict(imports=t1 - t0, load=t3 - t2, sha256=t4 - t3, first_forward=t5 - t4,
                      peak_before=before, peak_after=peak())))
"""


def cold(threads: int) -> dict:
    """The cold numbers, measured in a child process (see the module docstring)."""
    code = _COLD.format(threads=threads, sentence=SENTENCE)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(f"the cold-load process failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median_seconds(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def figure_seconds(repeats: int) -> dict[str, float]:
    """Median seconds of one whole figure (computed, drawn, saved as PDF) per real-model kind, warm."""
    import tempfile
    from pathlib import Path

    from filters.figures.entry import produce
    from filters.kinds import KINDS
    from filters.kinds.head_view import HeadViewOptions
    from filters.kinds.model_view import ModelViewOptions

    blocks = {"head-view": HeadViewOptions(sentence=SENTENCE, layer=2, heads=(0, 5, 9)),
              "model-view": ModelViewOptions(sentence=SENTENCE)}
    with tempfile.TemporaryDirectory() as tmp:
        def one(kind, options):
            folder = Path(tempfile.mkdtemp(dir=tmp))
            produce(KINDS[kind], options, folder, ext="pdf", device="cpu", lang="es")

        return {kind: median_seconds(lambda k=kind, o=options: one(k, o), repeats) for kind, options in blocks.items()}


def run(threads: int, repeats: int) -> list[str]:
    import torch

    import engine.pretrained as P

    torch.set_num_threads(threads)
    c = cold(threads)
    model = P.load()
    tokens = len(model(SENTENCE).tokens[0])
    one = median_seconds(lambda: model(SENTENCE), repeats)
    batch = median_seconds(lambda: model(BATCH), repeats)
    emb = median_seconds(lambda: P.embed(BATCH), repeats)
    figures = figure_seconds(max(3, repeats // 4))  # a figure takes a second: fewer of them
    return [
        f"pretrained all-MiniLM-L6-v2 (6 layers x 12 heads, d_model 384), CPU, {threads} threads",
        f"{'':<34} {'seconds':>8}",
        f"{'cold: import torch + engine':<34} {c['imports']:>8.2f}",
        f"{'cold: load() (SHA-256 included)':<34} {c['load']:>8.2f}   (of which the SHA-256 of the weights, "
        f"once per process: {c['sha256']:.2f})",
        f"{'cold: first forward':<34} {c['first_forward']:>8.2f}",
        f"{'warm: forward, ' + str(tokens) + ' tokens':<34} {one:>8.3f}   (median of {repeats})",
        f"{'warm: forward, ' + str(len(BATCH)) + ' sentences':<34} {batch:>8.3f}",
        f"{'warm: embed, ' + str(len(BATCH)) + ' sentences':<34} {emb:>8.3f}",
        *(f"{'warm: figure .' + kind + (' (6 x 12)' if kind == 'model-view' else ''):<34} {seconds:>8.3f}   "
          f"(produce(), PDF; median of {max(3, repeats // 4)}; goal 2 s: {'met' if seconds <= 2 else 'NOT met'})"
          for kind, seconds in figures.items()),
        f"peak memory of the cold process: {c['peak_before'] / MiB:.0f} MiB after importing torch, "
        f"{c['peak_after'] / MiB:.0f} MiB after load() and one forward (+{(c['peak_after'] - c['peak_before']) / MiB:.0f} MiB)",
        f"goal: a real-model figure in a warm worker <= 2 s: the slowest takes {max(figures.values()):.2f} s "
        f"({'met' if max(figures.values()) <= 2 else 'NOT met'}; the model's part {one * 1e3:.0f} ms); "
        f"a worker's first figure adds {c['load'] + c['first_forward']:.2f} s once",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch (default 2)")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per measurement (median)")
    args = parser.parse_args(argv)
    import importlib.util

    from engine.pretrained import INSTALL_HINT, PACKAGE

    if importlib.util.find_spec(PACKAGE) is None:
        print(f"bench_pretrained: skipped, the pretrained model is not installed ({INSTALL_HINT})")
        return
    print("\n".join(run(args.threads, args.repeats)))


if __name__ == "__main__":
    main()
