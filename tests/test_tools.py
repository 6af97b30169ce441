"""The developers' tools (tools/): the GPU check's comparison, its behaviour without CUDA, and the
deck check it runs; the attention bench's memory arithmetic."""

import numpy as np
import pytest
import torch
from conftest import LECTURES

from tools import gpu_check
from tools.bench_attention import analytic_manual_bytes


def test_compare_finds_each_kind_of_mismatch():
    cpu = {"a": torch.zeros(3), "b": [1.0, 2.0], "c": np.ones((2, 2)), "d": 1.0, "only_cpu": 0}
    cuda = {"a": torch.full((3,), 2e-5), "b": [1.0, 2.0], "c": np.ones((2, 3)), "d": float("nan"), "only_cuda": 0}
    problems = gpu_check.compare(cpu, cuda, atol=1e-5)
    assert any(p.startswith("a: max") for p in problems)
    assert any(p.startswith("c: shape") for p in problems)
    assert any(p.startswith("d: NaN") for p in problems)
    assert any("only_cpu" in p for p in problems) and any("only_cuda" in p for p in problems)
    assert not any(p.startswith("b:") for p in problems)
    assert gpu_check.compare({"x": torch.ones(2)}, {"x": torch.ones(2) + 5e-6}, atol=1e-5) == []


def test_run_checks_reports_a_check_that_differs_between_its_two_runs():
    calls = []

    def drifting(device):  # first call (CPU) and second call (the other device) disagree
        calls.append(device)
        return {"value": float(len(calls))}

    def raising(device):
        raise RuntimeError("boom")

    problems = gpu_check.run_checks([drifting, raising], device="cpu")
    assert len(calls) == 2
    assert problems[0].startswith("drifting: value: max |CPU - CUDA| = 1")
    assert problems[1] == "raising: raised RuntimeError: boom"
    assert gpu_check.run_checks([lambda d: {"v": torch.ones(1, device=d)}], device="cpu") == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the no-CUDA branch")
def test_gpu_check_skips_with_exit_status_zero_without_cuda(capsys):
    assert gpu_check.main([]) == 0
    assert "skipped" in capsys.readouterr().out


def test_analytic_memory_of_the_manual_path():
    # one (1, 8, 1024, 1024) float32 buffer = 32 MiB, plus q·scale and the output (1, 8, 1024, 64) each
    assert analytic_manual_bytes(1024) == 32 * 2**20 + 2 * 2 * 2**20


def test_gpu_check_deck_comparison_runs_and_the_deck_is_deterministic():
    """make gpu-check compares every deck figure on two devices; CPU against CPU must agree exactly
    (seeded), which also exercises the whole comparison without a GPU."""
    checks = gpu_check.deck_checks(list(LECTURES))
    assert len(checks) >= 1
    assert gpu_check.run_checks(checks, atol=0.0, device="cpu") == []
