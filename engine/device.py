"""Choosing where the engine runs: ``DEVICE=cpu|cuda|mps|auto``."""

from __future__ import annotations

import torch

CHOICES = ("auto", "cpu", "cuda", "mps")


def pick(name: str = "auto") -> torch.device:
    """Turn a device name into a :class:`torch.device`.

    ``"auto"`` takes CUDA when available, then Apple's MPS, else the CPU.

    Raises:
        ValueError: if ``name`` is not one of ``auto``, ``cpu``, ``cuda``, ``mps``.
        RuntimeError: if the named accelerator is not available on this machine.
    """
    name = (name or "auto").strip().lower()
    if name not in CHOICES:
        raise ValueError(f"unknown device {name!r}; choose one of {', '.join(CHOICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("DEVICE=cuda was asked for, but torch sees no CUDA device")
    if name == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError("DEVICE=mps was asked for, but torch sees no MPS device")
    return torch.device(name)
