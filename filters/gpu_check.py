"""``make gpu-check``: the engine's GPU check, plus every live block of every deck on CUDA.

Runs :func:`engine.gpu_check.main` (the engine tests on CUDA, the engine's own CPU ≟ CUDA checks)
with one more check per deck: :func:`filters.compute.compute_all_from_deck` on the CPU and on
CUDA, compared within 1e-5. Needs torch, numpy, PyYAML and pytest; no pandoc, TeX or panflute.
"""

from __future__ import annotations

import glob
import os
import sys

from engine import gpu_check

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def deck_checks(decks=None) -> list:
    """One check per deck (default ``slides/*.md``): its figures' arrays on a given device."""
    from filters.compute import compute_all_from_deck

    decks = sorted(glob.glob(os.path.join(ROOT, "slides", "*.md"))) if decks is None else list(decks)

    def make(deck: str):
        def check(device):
            return {f"{os.path.basename(deck)}:{k}": v for k, v in compute_all_from_deck(deck, device=device).items()}

        check.__name__ = f"deck {os.path.basename(deck)}"
        return check

    return [make(deck) for deck in decks]


if __name__ == "__main__":
    sys.exit(gpu_check.main(sys.argv[1:], extra_checks=deck_checks()))
