"""The GPU check (``make gpu-check``): the engine and every deck's live blocks give the CPU's numbers on CUDA.

Run ``python -m tools.gpu_check`` from the repository's root on a machine with a CUDA GPU and
torch, numpy, PyYAML and pytest (no pandoc, TeX, panflute or matplotlib needed). It

1. runs the engine's tests, ``pytest tests/test_engine*.py`` — their ``cuda`` cases run there (the
   fast path under ``torch.cuda.set_sync_debug_mode("error")`` and inside a CUDA graph, too);
2. computes every *check* on the CPU and on CUDA and compares the results: the engine's own
   (:data:`ENGINE_CHECKS`) and one per deck in ``slides/`` (:func:`deck_checks`: every live block
   recomputed through its kind's ``compute``), printing each one's time on either device (for a
   deck: the time to regenerate its figure data);
3. prints the fast path ÷ SDPA table of ``make bench`` on CUDA (:func:`tools.bench_attention.fast_vs_sdpa`).

A check is a callable ``check(device: torch.device) -> Mapping[str, tensor | array | number | list]``;
each value is compared with ``atol`` (default 1e-5, float32).

Exit status: 0 when everything agrees (or, without CUDA, after printing that it skips); 1 on a test
failure or a mismatch. The whole run is bounded to about 3 minutes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import torch

from tools import ROOT

Check = Callable[[torch.device], Mapping[str, object]]
PYTEST_TIMEOUT_S = 150


# ---- the engine's own checks: same seeds, same weights, on each device ----

def check_positional(device: torch.device) -> dict[str, object]:
    from engine.positional import alibi_bias, rotary_embedding, sinusoidal_encoding

    x = torch.randn(2, 16, 32, generator=torch.Generator().manual_seed(0)).to(device)
    return {"sinusoidal": sinusoidal_encoding(64, 33, device=device),
            "rope": rotary_embedding(x), "alibi": alibi_bias(12, 16, 20, device=device)}


def check_attention(device: torch.device) -> dict[str, object]:
    from engine.attention import MultiHeadAttention
    from engine.masks import causal_mask, padding_mask

    g = torch.Generator().manual_seed(1)
    mha = MultiHeadAttention(64, 8, seed=0).to(device).eval()
    x = torch.randn(2, 24, 64, generator=g).to(device)
    mask = padding_mask([24, 10], device=device) & causal_mask(24, device=device)
    with torch.no_grad():
        out, weights = mha(x, mask=mask)
        fast, _ = mha(x, mask=mask, need_weights=False)
    return {"mha.output": out, "mha.weights": weights, "mha.fast": fast}


def check_block(device: torch.device) -> dict[str, object]:
    from engine.block import Encoder

    encoder = Encoder(2, 64, 4, 128, norm_first=True, activation="gelu", seed=0).to(device).eval()
    x = torch.randn(2, 32, 64, generator=torch.Generator().manual_seed(2)).to(device)
    with torch.no_grad():
        y, weights = encoder(x, is_causal=True, need_weights=True)
    return {"encoder.output": y, **{f"encoder.weights.{i}": w for i, w in enumerate(weights)}}


def check_toy(device: torch.device) -> dict[str, object]:
    """Training differs in the last bits between devices; what the slide shows must not."""
    from engine.toy import ReversalConfig, train_reversal

    result = train_reversal(ReversalConfig(seed=0), device=device)
    return {"toy.accuracy": result.accuracy,
            "toy.argmax": torch.tensor(result.weights).argmax(-1).tolist()}


ENGINE_CHECKS: list[Check] = [check_positional, check_attention, check_block, check_toy]


# ---- every deck's live blocks: what each kind says must agree across devices ----

def deck_arrays(deck: Path, device: torch.device) -> dict[str, object]:
    """Recompute every live block of ``deck`` on ``device``, through its kind's ``compute`` (or, for
    a ``.run`` block, by running it).

    Returns:
        ``{"<block>.<name>": value}``: the kind's ``across_devices(data)`` when it has one (what
        the slide shows, for results that differ in the last bits between devices), else every
        number and array of the data (token strings and flags left out).
    """
    import tempfile

    from filters.blocks.options import parse_options
    from filters.figures.entry import produce
    from filters.kinds import KINDS
    from filters.pandoc.scan import live_blocks

    arrays: dict[str, object] = {}
    for n, (name, ident, attributes, body, *_) in enumerate(live_blocks(deck.read_text()), start=1):
        kind = KINDS[name]
        options = parse_options(kind.options, attributes, body).in_language("es")  # the language produce gets below
        if kind.compute is not None:
            data = kind.compute(options, device.type)
        else:  # a kind that makes its pictures as it computes (.run): needs matplotlib too
            with tempfile.TemporaryDirectory() as folder:
                data = produce(kind, options, Path(folder), ext="png", device=device.type, lang="es")
        values = kind.across_devices(data) if kind.across_devices else data
        values = {key: value for key, value in values.items()
                  if isinstance(value, (int, float, list)) and not isinstance(value, bool) and _numeric(value)}
        arrays.update({f"{ident or f'{name}-{n}'}.{key}": value for key, value in values.items()})
    return arrays


def _numeric(value) -> bool:
    try:
        np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return False  # token strings
    return True


def deck_checks(decks=None) -> list[Check]:
    """One check per deck (default ``slides/*.md``): its live blocks' numbers on a given device."""
    decks = sorted((ROOT / "slides").glob("*.md")) if decks is None else [Path(d) for d in decks]

    def make(deck: Path) -> Check:
        def check(device):
            return {f"{deck.name}:{key}": value for key, value in deck_arrays(deck, device).items()}

        check.__name__ = f"deck {deck.name}"
        return check

    return [make(deck) for deck in decks]


# ---- comparing ----

def _as_array(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def compare(cpu: Mapping[str, object], cuda: Mapping[str, object], atol: float) -> list[str]:
    """Problems found, one line each; empty when the two agree within ``atol``."""
    problems = [f"{key}: only on {'CPU' if key in cpu else 'CUDA'}" for key in sorted(set(cpu) ^ set(cuda))]
    for key in sorted(set(cpu) & set(cuda)):
        a, b = _as_array(cpu[key]), _as_array(cuda[key])
        if a.shape != b.shape:
            problems.append(f"{key}: shape {a.shape} on CPU, {b.shape} on CUDA")
        elif not np.array_equal(np.isnan(a), np.isnan(b)):
            problems.append(f"{key}: NaN in different places")
        elif a.size and np.nanmax(np.abs(a - b)) > atol:
            problems.append(f"{key}: max |CPU - CUDA| = {np.nanmax(np.abs(a - b)):.3g} > {atol:g}")
    return problems


def run_checks(checks: Iterable[Check], atol: float = 1e-5, device: str = "cuda") -> list[str]:
    """Run each check on the CPU and on ``device``; return every problem found."""
    problems = []
    for check in checks:
        name = getattr(check, "__name__", repr(check))
        try:
            start = time.perf_counter()
            cpu = check(torch.device("cpu"))
            middle = time.perf_counter()
            other = check(torch.device(device))
            end = time.perf_counter()
        except Exception as error:
            problems.append(f"{name}: raised {type(error).__name__}: {error}")
            continue
        found = compare(cpu, other, atol)
        print(f"gpu_check: {name}: {len(cpu)} outputs, {'OK' if not found else 'MISMATCH'} "
              f"(CPU {middle - start:.1f} s, {device} {end - middle:.1f} s)", flush=True)
        problems += [f"{name}: {p}" for p in found]
    return problems


def run_tests() -> bool:
    """``pytest tests/test_engine*.py``; True when it passes."""
    tests = sorted((ROOT / "tests").glob("test_engine*.py"))
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *map(str, tests)]
    print("gpu_check: running", " ".join(str(t.relative_to(ROOT)) for t in tests), flush=True)
    try:
        return subprocess.run(command, cwd=ROOT, timeout=PYTEST_TIMEOUT_S).returncode == 0
    except subprocess.TimeoutExpired:
        print(f"gpu_check: the engine tests took over {PYTEST_TIMEOUT_S} s")
        return False


def main(argv: list[str] | None = None, extra_checks: Iterable[Check] | None = None) -> int:
    """Run the check; ``extra_checks`` default to :func:`deck_checks` of ``slides/*.md``."""
    parser = argparse.ArgumentParser(prog="python -m tools.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--atol", type=float, default=1e-5)
    parser.add_argument("--skip-tests", action="store_true", help="only compare the checks")
    args = parser.parse_args(argv)

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device (torch.cuda.is_available() is False): skipped")
        return 0
    print(f"gpu_check: torch {torch.__version__}, {torch.cuda.get_device_name(0)}", flush=True)
    tests_ok = args.skip_tests or run_tests()
    problems = run_checks([*ENGINE_CHECKS, *(deck_checks() if extra_checks is None else extra_checks)], atol=args.atol)
    for problem in problems:
        print("gpu_check: MISMATCH", problem)
    from tools.bench_attention import fast_vs_sdpa

    for line in fast_vs_sdpa(torch.device("cuda")):
        print("gpu_check:", line, flush=True)
    ok = tests_ok and not problems
    print(f"gpu_check: {'passed' if ok else 'FAILED'}"
          + ("" if tests_ok else " (engine tests failed)") + (f" ({len(problems)} mismatches)" if problems else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
