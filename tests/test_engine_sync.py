"""The fast path never waits for the device: no host synchronisation and no Python branch on a
tensor's values, so ``torch.compile`` captures it whole and a CUDA graph can replay it.

On the CPU, ``torch.compile(..., backend="eager", fullgraph=True)`` fails at the first graph break
(an ``if tensor.any():``, a ``.item()``); on CUDA the same runs under
``torch.cuda.set_sync_debug_mode("error")`` and inside a captured CUDA graph. Also: the first
attention call of a fresh process imports no sympy (``torch.broadcast_shapes`` would), and inputs
of mixed dtypes or devices raise one error on both paths.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from engine.attention import MultiHeadAttention, scaled_dot_product_attention
from engine.masks import padding_mask
from engine.positional import LearnedPositionalEmbedding

HAS_CUDA = torch.cuda.is_available()
NO_CUDA = "needs a CUDA device (make gpu-check runs it on one)"
B, H, L, D = 2, 4, 6, 8


def inputs(device="cpu", dtype=torch.float32, S=L):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(B, H, n, D, generator=g).to(device, dtype) for n in (L, S, S))
    return q, k, v


def masks(device="cpu"):
    """The masks a figure or a model uses: none, causal, key padding, an additive float mask."""
    padded = padding_mask(torch.tensor([L, 3]), L).to(device)  # (B, 1, 1, S)
    additive = torch.zeros(L, L, device=device).masked_fill(torch.rand(L, L, generator=torch.Generator().manual_seed(1))
                                                            .to(device) < 0.3, float("-inf"))
    return {"none": (None, False), "causal": (None, True), "padded": (padded, False),
            "padded-causal": (padded, True), "float": (additive, False)}


def fast(q, k, v, mask, causal):
    return scaled_dot_product_attention(q, k, v, mask, is_causal=causal, need_weights=False)[0]


@pytest.mark.parametrize("case", list(masks()))
def test_the_fast_path_compiles_as_one_graph(case):
    torch._dynamo.reset()
    mask, causal = masks()[case]
    q, k, v = inputs()
    compiled = torch.compile(fast, backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(q, k, v, mask, causal), fast(q, k, v, mask, causal), equal_nan=True)


def test_multi_head_attention_without_weights_compiles_as_one_graph():
    torch._dynamo.reset()
    mha = MultiHeadAttention(16, 4, seed=0).eval()
    x = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(2))
    padded = padding_mask(torch.tensor([5, 2]), 5)  # (B, 1, 1, S): every query and head of a sequence

    def forward(x, mask):
        return mha(x, mask=mask, need_weights=False)[0]

    compiled = torch.compile(forward, backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(x, padded), forward(x, padded))


def test_learned_positions_of_a_length_compile_as_one_graph():
    torch._dynamo.reset()
    table = LearnedPositionalEmbedding(16, 8, seed=0)
    compiled = torch.compile(lambda n: table(n), backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(5), table(torch.arange(5)))


def test_the_first_attention_call_imports_no_sympy():
    """torch.broadcast_shapes imports sympy on its first call (about a second, in every worker)."""
    code = ("import sys, torch\n"
            "from engine.attention import scaled_dot_product_attention as sdpa\n"
            "q = torch.randn(1, 2, 3, 4)\n"
            "mask = torch.ones(3, 3, dtype=torch.bool)\n"
            "sdpa(q, q, q, mask); sdpa(q, q, q, mask, need_weights=False, is_causal=True)\n"
            "print('sympy' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("odd", ["dtype", "mask-device"])
def test_mixed_inputs_raise_one_error_on_both_paths(odd, need_weights):
    q, k, v = inputs()
    mask = torch.ones(L, L, dtype=torch.bool)
    if odd == "dtype":
        k = k.double()
        match = "one dtype"
    else:
        mask = mask.to("meta")
        match = "one device"
    with pytest.raises(ValueError, match=match):
        scaled_dot_product_attention(q, k, v, mask, need_weights=need_weights)


@pytest.mark.skipif(not HAS_CUDA, reason=NO_CUDA)
@pytest.mark.parametrize("case", list(masks()))
def test_the_fast_path_never_synchronises_on_cuda(case):
    mask, causal = masks("cuda")[case]
    q, k, v = inputs("cuda")
    fast(q, k, v, mask, causal)  # warm: kernels chosen, workspaces allocated
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = fast(q, k, v, mask, causal)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.testing.assert_close(out.cpu(), fast(*(t.cpu() for t in (q, k, v)), None if mask is None else mask.cpu(),
                                               causal), atol=1e-5, rtol=1e-5, equal_nan=True)


@pytest.mark.skipif(not HAS_CUDA, reason=NO_CUDA)
@pytest.mark.parametrize("case", ["none", "causal", "padded"])
def test_the_fast_path_runs_inside_a_cuda_graph(case):
    mask, causal = masks("cuda")[case]
    q, k, v = inputs("cuda")
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            fast(q, k, v, mask, causal)  # warm-up on a side stream, as capture requires
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = fast(q, k, v, mask, causal)
    q.copy_(q * 2)  # new inputs, same buffers: the replay must see them
    graph.replay()
    torch.testing.assert_close(captured, fast(q, k, v, mask, causal), equal_nan=True)
