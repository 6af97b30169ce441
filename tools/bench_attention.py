"""How much the figures' attention weights cost: the manual path against PyTorch's fused SDPA.

Run ``python -m tools.bench_attention`` (``make bench``). For each length ``L`` it times, side by side in
one run (the three calls interleaved in every repeat, then the median):

* ``SDPA``   — :func:`torch.nn.functional.scaled_dot_product_attention`, the reference;
* ``manual`` — :func:`engine.attention.scaled_dot_product_attention` with ``need_weights=True``,
  which materialises the ``(B, H, L, S)`` weights the heatmaps need;
* ``fast``   — the same function with ``need_weights=False`` (our wrapper around the fused kernel),

with ``B = 1``, ``H = 8``, ``d_k = 64``, float32, under ``torch.no_grad()``, on one CPU thread by
default (``--threads N`` to change it), and reports the
ratios to SDPA and the peak memory of each call. Peak memory on the CPU is *measured*: a child
process (glibc told to serve every allocation over 128 KiB with its own ``mmap``, so that freed
memory leaves the resident set at once) resets the kernel's resident-set high-water mark
(``/proc/self/clear_refs``), runs one call, and reports ``VmHWM`` minus the resident set before
the call. On CUDA it is ``torch.cuda.max_memory_allocated`` growth. Next to it the *analytic*
size of the tensors the manual path materialises is printed.

A fourth timed call, ``touch``, only allocates and fills a fresh ``(B, H, L, S)`` tensor: the cost
of handing back new weights at all, which no arrangement of the arithmetic removes.

On Linux most of ``touch`` is page faults on the freshly mapped block; starting Python with
``THP_MEM_ALLOC_ENABLE=1`` (PyTorch's switch to back big CPU allocations with huge pages) makes it
several times cheaper. The bench reports what it measures under the environment it is given.

A second table times the fast path against SDPA alone, where nothing but our wrapper differs, at
``L`` in :data:`FAST_LENGTHS`, without a mask and with a boolean ``(L, S)`` mask (one key in ten
masked, the case where our rules read the whole mask): the goal is fast ÷ SDPA ≤ 1.05 on every
device (``make gpu-check`` prints the same table on CUDA).

Finally it trains the toy reversal model (:mod:`engine.toy`) once and prints its training time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from engine.attention import scaled_dot_product_attention
from tools import ROOT

B, H, D_K = 1, 8, 64
LENGTHS = (128, 512, 1024, 2048)
FAST_LENGTHS = (128, 1024, 4096)
FAST_GOAL = 1.05  # fast ÷ SDPA: our rules may cost at most 5 % over the fused kernel
PATHS = ("sdpa", "manual", "fast")
MiB = 2**20


def make_inputs(L: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Seeded ``q, k, v`` of shape ``(B, H, L, d_k)``, float32."""
    g = torch.Generator().manual_seed(L)
    return tuple(torch.randn(B, H, L, D_K, generator=g).to(device) for _ in range(3))


def calls(q, k, v) -> dict[str, Callable[[], object]]:
    return {
        "sdpa": lambda: F.scaled_dot_product_attention(q, k, v),
        "manual": lambda: scaled_dot_product_attention(q, k, v, need_weights=True),
        "fast": lambda: scaled_dot_product_attention(q, k, v, need_weights=False),
    }


def touch_call(q, k) -> Callable[[], object]:
    """Allocate and write a fresh (B, H, L, S) float32 tensor: the floor under any path that hands
    back new attention weights (on the CPU mostly page faults: glibc maps big blocks afresh)."""
    shape = (*q.shape[:-1], k.shape[-2])
    return lambda: torch.empty(shape, device=q.device).fill_(1.0)


def time_interleaved(fns: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict[str, float]:
    """Median seconds per call; each repeat runs every function once, in turn, after one warm-up."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times: dict[str, list[float]] = {name: [] for name in fns}
    with torch.no_grad():
        for fn in fns.values():
            fn()
        for _ in range(repeats):
            for name, fn in fns.items():
                sync()
                start = time.perf_counter()
                fn()
                sync()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


# ---- peak memory ----

def _rss_bytes(field: str) -> int:
    """``VmRSS`` or ``VmHWM`` of this process, in bytes."""
    with open("/proc/self/status") as f:
        return int(re.search(rf"{field}:\s+(\d+) kB", f.read()).group(1)) * 1024


def _measure_cpu_peaks(lengths) -> dict:
    """In *this* process: resident-set growth of one call of each path (see the module docstring)."""
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", torch.get_num_threads())))
    peaks = {}
    with torch.no_grad():
        for fn in calls(*make_inputs(16, torch.device("cpu"))).values():
            fn()  # warm up thread pools and kernels outside the measurement
        for L in lengths:
            fns = calls(*make_inputs(L, torch.device("cpu")))
            for name, fn in fns.items():
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")  # reset VmHWM to the current resident set
                before = _rss_bytes("VmRSS")
                result = fn()
                peaks[f"{name}:{L}"] = _rss_bytes("VmHWM") - before
                del result
    return peaks


def cpu_peaks(lengths) -> dict[str, int] | str:
    """Run :func:`_measure_cpu_peaks` in a child process; a reason string if it cannot."""
    if not os.path.exists("/proc/self/clear_refs"):
        return "no /proc/self/clear_refs on this system"
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072",
               BENCH_THREADS=str(torch.get_num_threads()))
    code = f"import json, tools.bench_attention as b; print(json.dumps(b._measure_cpu_peaks({list(lengths)!r})))"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    if proc.returncode:
        return f"measurement process failed: {proc.stderr.strip().splitlines()[-1:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cuda_peaks(lengths, device: torch.device) -> dict[str, int]:
    peaks = {}
    with torch.no_grad():
        for L in lengths:
            for name, fn in calls(*make_inputs(L, device)).items():
                torch.cuda.synchronize()
                before = torch.cuda.memory_allocated(device)
                torch.cuda.reset_peak_memory_stats(device)
                result = fn()
                torch.cuda.synchronize()
                peaks[f"{name}:{L}"] = torch.cuda.max_memory_allocated(device) - before
                del result
    return peaks


def analytic_manual_bytes(L: int) -> int:
    """Tensors the manual path materialises: one (B, H, L, S) weights buffer (the softmax overwrites
    the scores), the scaled q and the output, all float32."""
    return 4 * (B * H * L * L + 2 * B * H * L * D_K)


# ---- report ----

def run(device: torch.device, lengths, repeats: int) -> list[str]:
    threads = torch.get_num_threads() if device.type == "cpu" else None
    lines = [f"attention, B={B} H={H} d_k={D_K} float32, device={device}"
             + (f" ({threads} threads)" if threads else "")
             + f", median of {repeats} interleaved repeats (fewer at L=2048)"
             + f", THP_MEM_ALLOC_ENABLE={os.environ.get('THP_MEM_ALLOC_ENABLE', 'unset')}"]
    peaks = cuda_peaks(lengths, device) if device.type == "cuda" else cpu_peaks(lengths)
    how = ("torch.cuda.max_memory_allocated growth" if device.type == "cuda"
           else "resident-set high-water growth of one call in a child process (VmHWM, clear_refs)")
    lines.append(f"peak memory: {how}" if isinstance(peaks, dict) else f"peak memory: not measured ({peaks})")
    lines.append(f"{'L':>6} {'SDPA ms':>9} {'manual ms':>10} {'fast ms':>9} {'manual/SDPA':>12} {'fast/SDPA':>10}"
                 f" {'(manual-touch)/SDPA':>20} {'peak MiB SDPA':>14} {'manual':>7} {'fast':>6} {'analytic manual':>16}")
    ratios = {}
    for L in lengths:
        q, k, v = make_inputs(L, device)
        fns = {**calls(q, k, v), "touch": touch_call(q, k)}
        t = time_interleaved(fns, repeats if L < 2048 else max(3, repeats // 2), device)
        ratios[L] = (t["manual"] / t["sdpa"], t["fast"] / t["sdpa"])
        mem = [f"{peaks[f'{p}:{L}'] / MiB:.1f}" if isinstance(peaks, dict) else "-" for p in PATHS]
        lines.append(f"{L:>6} {t['sdpa'] * 1e3:>9.2f} {t['manual'] * 1e3:>10.2f} {t['fast'] * 1e3:>9.2f}"
                     f" {ratios[L][0]:>11.2f}x {ratios[L][1]:>9.3f}x {(t['manual'] - t['touch']) / t['sdpa']:>19.2f}x"
                     f" {mem[0]:>14} {mem[1]:>7} {mem[2]:>6}"
                     f" {analytic_manual_bytes(L) / MiB:>16.1f}")
    if 1024 in ratios:
        manual, fast = ratios[1024]
        lines.append(f"targets at L=1024: manual <= 1.5x SDPA: {'met' if manual <= 1.5 else 'NOT met'} "
                     f"({manual:.2f}x); fast <= 1.05x SDPA: {'met' if fast <= 1.05 else 'NOT met'} ({fast:.3f}x)")
    if device.type == "cpu" and os.environ.get("THP_MEM_ALLOC_ENABLE") != "1":
        lines.append("note: THP_MEM_ALLOC_ENABLE=1 (PyTorch's switch for huge pages on big CPU allocations, read at "
                     "start-up) makes the fresh-weights part much cheaper on Linux")
    lines.append("touch = allocating and writing one fresh (B, H, L, S) float32 tensor, the part of the manual "
                 "path's cost that comes from returning new weights at all")
    return lines


def key_mask(L: int, device: torch.device) -> torch.Tensor:
    """A seeded boolean ``(L, S)`` mask, ``True`` = may attend, one key in ten masked (``S = L``)."""
    g = torch.Generator().manual_seed(L + 1)
    return (torch.rand(L, L, generator=g) >= 0.1).to(device)


def fast_calls(q, k, v, mask) -> dict[str, Callable[[], object]]:
    """SDPA and our fast path, without and with ``mask``."""
    return {"sdpa": lambda: F.scaled_dot_product_attention(q, k, v),
            "fast": lambda: scaled_dot_product_attention(q, k, v, need_weights=False),
            "sdpa+mask": lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
            "fast+mask": lambda: scaled_dot_product_attention(q, k, v, mask, need_weights=False)}


def fast_vs_sdpa(device: torch.device, lengths=FAST_LENGTHS, repeats: int = 7) -> list[str]:
    """The fast path against SDPA alone, timed side by side (interleaved), without and with a mask."""
    lines = [f"fast path ÷ SDPA, B={B} H={H} d_k={D_K} float32, device={device}, median of interleaved repeats "
             f"(goal <= {FAST_GOAL})",
             f"{'L':>6} {'SDPA ms':>9} {'fast ms':>9} {'fast/SDPA':>10} {'SDPA+mask ms':>13} {'fast+mask ms':>13} "
             f"{'fast/SDPA':>10}"]
    worst = 0.0
    for L in lengths:
        fns = fast_calls(*make_inputs(L, device), key_mask(L, device))
        t = time_interleaved(fns, repeats if L < 4096 else max(3, repeats // 2), device)
        plain, masked = t["fast"] / t["sdpa"], t["fast+mask"] / t["sdpa+mask"]
        worst = max(worst, plain, masked)
        lines.append(f"{L:>6} {t['sdpa'] * 1e3:>9.2f} {t['fast'] * 1e3:>9.2f} {plain:>9.3f}x {t['sdpa+mask'] * 1e3:>13.2f} "
                     f"{t['fast+mask'] * 1e3:>13.2f} {masked:>9.3f}x")
    lines.append(f"goal fast/SDPA <= {FAST_GOAL} at every length: {'met' if worst <= FAST_GOAL else 'NOT met'} "
                 f"(worst {worst:.3f}x)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_attention", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads for the timings (default 1: an OpenMP team waits for its slowest "
                             "thread, so on a shared or busy machine more threads measure the neighbours)")
    parser.add_argument("--no-toy", action="store_true", help="skip training the toy reversal model")
    parser.add_argument("--fast-lengths", type=int, nargs="+", default=list(FAST_LENGTHS),
                        help="lengths of the fast-path table")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for device in devices:
        for line in run(device, args.lengths, args.repeats):
            print(line, flush=True)
        print(flush=True)
        for line in fast_vs_sdpa(device, args.fast_lengths):
            print(line, flush=True)
        print(flush=True)
    if not torch.cuda.is_available():
        print("CUDA: not available, skipped\n")
    if not args.no_toy:
        from engine.toy import ReversalConfig, train_reversal

        result = train_reversal(ReversalConfig(seed=0))
        print(f"toy reversal model (1 attention layer, {result.steps} steps, 1 CPU thread): "
              f"trained in {result.train_seconds:.2f} s, held-out exact match {result.accuracy:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
