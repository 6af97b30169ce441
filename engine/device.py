"""Where the engine runs: ``cpu``, ``cuda``, ``mps`` or ``auto`` — the one place that decides it.

:func:`resolve` names the device a setting means (the build's cache keys need that name, so it
avoids importing torch whenever the answer is certain without it); :func:`pick` turns a setting into
a :class:`torch.device`. Both read ``auto`` the same way: CUDA when torch sees it, then Apple's MPS,
else the CPU.
"""

from __future__ import annotations

import os
import sys

CHOICES = ("auto", "cpu", "cuda", "mps")


def _check(name: str | None) -> str:
    name = (name or "auto").strip().lower()
    if name not in CHOICES:
        raise ValueError(f"unknown device {name!r}; choose one of {', '.join(CHOICES)}")
    return name


def _no_accelerator_possible() -> bool:
    """True when no CUDA or MPS device can exist here: no NVIDIA driver, and not macOS."""
    driver = os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia/version")
    return not driver and sys.platform != "darwin"


def resolve(name: str | None = "auto") -> str:
    """The device class a setting means: ``"cpu"``, ``"cuda"`` or ``"mps"``.

    ``auto`` is answered without importing torch where no accelerator can exist (no NVIDIA driver,
    not macOS); elsewhere torch is asked, exactly as :func:`pick` asks it.

    Raises:
        ValueError: if ``name`` is not one of :data:`CHOICES`.
    """
    name = _check(name)
    if name != "auto":
        return name
    if _no_accelerator_possible():
        return "cpu"
    return pick("auto").type


def pick(name: str | None = "auto"):
    """Turn a device setting into a :class:`torch.device`.

    ``"auto"`` takes CUDA when available, then Apple's MPS, else the CPU.

    Raises:
        ValueError: if ``name`` is not one of ``auto``, ``cpu``, ``cuda``, ``mps``.
        RuntimeError: if the named accelerator is not available on this machine.
    """
    import torch

    name = _check(name)
    mps = getattr(torch.backends, "mps", None)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("cuda was asked for, but torch sees no CUDA device")
    if name == "mps" and not (mps is not None and mps.is_available()):
        raise RuntimeError("mps was asked for, but torch sees no MPS device")
    return torch.device(name)
