"""The reversal task of the slides: trained live, it must be solved, and the heatmap must show how."""

import pytest
import torch

from engine.toy import ReversalConfig, make_data, train_reversal


@pytest.fixture(scope="module")
def result():
    return train_reversal(ReversalConfig(seed=0))  # the deck's configuration


def test_reversal_is_learned_exactly_on_held_out_sequences(result):
    assert result.accuracy == 1.0
    assert result.prediction == result.tokens[::-1]


def test_attention_is_the_anti_diagonal(result):
    weights = torch.tensor(result.weights)  # (L, S)
    L = len(result.tokens)
    assert weights.shape == (L, L)
    torch.testing.assert_close(weights.sum(-1), torch.ones(L))
    assert weights.argmax(-1).tolist() == [L - 1 - i for i in range(L)]
    assert weights.diagonal().sum() < 0.5  # not the identity: routing really is reversed
    assert torch.tensor(result.head_weights).shape == (1, L, L)


def test_training_is_deterministic_under_the_seed(result):
    again = train_reversal(ReversalConfig(seed=0))
    assert again.weights == result.weights and again.final_loss == result.final_loss


def test_held_out_sequences_are_never_trained_on():
    cfg = ReversalConfig(train_size=500, held_out=100)
    train, held_out = make_data(cfg, torch.Generator().manual_seed(0))
    assert train.shape == (500, 8) and held_out.shape == (100, 8)
    seen = {tuple(row) for row in train.tolist()}
    assert not any(tuple(row) in seen for row in held_out.tolist())
    assert len({tuple(row) for row in held_out.tolist()}) == 100


def test_written_out_adam_matches_torch_adam():
    """engine.toy.Adam against torch.optim.Adam on the same parameters and gradients."""
    from engine.optim import Adam

    g = torch.Generator().manual_seed(0)
    ours = torch.nn.Parameter(torch.randn(5, 3, generator=g))
    theirs = torch.nn.Parameter(ours.detach().clone())
    mine, reference = Adam([ours], lr=0.05), torch.optim.Adam([theirs], lr=0.05)
    for _ in range(20):
        target = torch.randn(5, 3, generator=g)
        for p, opt in ((ours, mine), (theirs, reference)):
            opt.zero_grad()
            ((p - target) ** 2).sum().backward()
            opt.step()
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-6)
