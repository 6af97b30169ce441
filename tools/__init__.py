"""Tools for the people who work on attnslides, not part of the lecture or the filter.

Run them from the repository's root: ``python -m tools.bench_attention``, ``python -m
tools.bench_build`` and ``python -m tools.bench_rebuild`` (``make bench``), ``python -m
tools.gpu_check`` (``make gpu-check``).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository: slides/, tests/, engine/, filters/
