"""The first lecture answers each of its eleven questions with a live experiment: each claim, as its
caption states it, checked against an independent reference — a closed form, a property on fresh
data, or a computation written here separately — never against the code that drew it. Training
experiments are seeded; their claims are checked for several seeds."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from conftest import ROOT, filter_deck, frames, skip_without_model

DECK = ROOT / "slides" / "transformers-1.md"
QUESTIONS = ["¿Qué significa que un modelo \"entienda\" una secuencia?", "¿Por qué un MLP falla aquí?",
             "¿Qué captura un embedding bien entrenado?", "¿Qué se perdería si permutamos los tokens?",
             "¿Por qué no basta con concatenar la posición?", "¿Qué significa \"mirar\" a otro token?",
             "¿Por qué necesitamos tres proyecciones distintas?", "¿Por qué escalamos por $\\sqrt{d_k}$?",
             "¿Qué gana un token al auto-atenderse?", "¿Por qué las conexiones residuales ayudan al entrenamiento?",
             "¿Qué ventaja aporta esto frente a un RNN?"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Every live block of the lecture, computed once: its JSON data by block id."""
    skip_without_model()
    folder = tmp_path_factory.mktemp("lecture")
    dirs = {"figures-dir": "build/figures", "cache-dir": "build/cache", "jobs": 0}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setenv("PANDOC_VERSION", "3.9")
        filter_deck(DECK, dirs, mp)
    return {path.stem: json.loads(path.read_text()) for path in (folder / "build" / "figures" / DECK.stem).glob("*.json")}


def test_every_question_is_answered_live_on_the_next_frame_with_its_title():
    deck = frames(DECK.read_text())
    for question in QUESTIONS:
        (n,) = [i for i, (_, body) in enumerate(deck) if f"> {question}" in body]
        title, answer = deck[n + 1]
        assert title == deck[n][0], f"the answer to {question!r} is not on the next frame"
        assert re.search(r"```\{\.[\w-]+", answer), f"the frame after {question!r} has no live block"


def test_same_word_one_vector_before_attention_two_after(data):
    """Q1: an embedding is a lookup, so «banco» is one vector in both sentences (cosine 1); the
    blocks mix in each sentence's context, and the two readings part."""
    similarity = data["fig-banco"]["data"]["similitud"]
    assert similarity[0] == pytest.approx(1.0, abs=1e-6)
    assert all(s < 0.99 for s in similarity[1:]) and similarity[-1] < similarity[1]


def test_an_mlp_over_the_mean_cannot_tell_the_order(data):
    """Q2: the mean of a set does not depend on its order (up to float rounding); attention with
    positions does."""
    values = data["fig-mlp"]["data"]
    assert values["diferencia_mlp"] < 1e-6 and values["diferencia_atencion"] > 1e-2
    text = next(o["text"] for o in data["fig-mlp"]["outputs"] if "text" in o)
    assert "espera 5 tokens" in text and "tiene 8" in text


def test_embeddings_cluster_by_topic_and_the_numbers_are_right(data):
    """Q3: the figure's numbers recomputed from the vectors with numpy: cosines, the topic means
    and the 2-D projection (principal components)."""
    emb = data["fig-embeddings"]
    vectors = np.array(emb["vectors"])
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    np.testing.assert_allclose(emb["similarity"], unit @ unit.T, atol=1e-5)
    topic = np.repeat(np.arange(len(emb["topics"])), [len(w) for w in emb["topics"].values()])
    same = (topic[:, None] == topic[None, :]) & ~np.eye(len(topic), dtype=bool)
    assert emb["within"] == pytest.approx((unit @ unit.T)[same].mean(), abs=1e-5)
    assert emb["between"] == pytest.approx((unit @ unit.T)[topic[:, None] != topic[None, :]].mean(), abs=1e-5)
    centred = vectors - vectors.mean(0)
    _, eigenvectors = np.linalg.eigh(np.cov(centred.T))
    expected = centred @ eigenvectors[:, ::-1][:, :2]
    np.testing.assert_allclose(np.abs(emb["projection"]), np.abs(expected), atol=1e-3)


def test_a_real_english_model_cuts_spanish_words_into_english_pieces(data):
    """The WordPiece slide: its pieces are Google's WordPiece as transformers ports it, over the
    model's own vocabulary (an independent implementation); the Spanish sentence is cut into more
    pieces per word than its English twin, and the slide says the model is English-only."""
    pytest.importorskip("transformers", reason="the reference tokenizer is a [dev] dependency")
    import engine.pretrained

    try:  # transformers 5 renamed the Python port (its BertTokenizer is the Rust one)
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as Reference
    except ImportError:
        from transformers import BertTokenizer as Reference
    reference = Reference(vocab_file=str(engine.pretrained.installed_folder() / "vocab.txt"), do_lower_case=True)
    block = data["fig-wordpiece"]
    frases, piezas = block["data"]["frases"], block["data"]["piezas"]
    for language, sentence in frases.items():
        assert piezas[language] == [reference.tokenize(word) for word in sentence.split()], language
    per_word = {language: sum(map(len, cut)) / len(cut) for language, cut in piezas.items()}
    assert per_word["español"] > 1.5 > per_word["inglés"]
    text = next(o["text"] for o in block["outputs"] if "text" in o)
    assert "solo inglés" in text and f"{len(reference.vocab):,}".replace(",", " ") in text


@pytest.mark.parametrize("corpus", ["es", "en"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_embeddings_cluster_for_several_seeds(seed, corpus):
    from filters.kinds import KINDS

    kind = KINDS["embeddings"]
    emb = kind.compute(kind.options(seed=seed, corpus=corpus))
    assert emb["within"] > emb["between"] + 0.3
    # every word is nearer (in cosine) to the mean of its own topic than to any other topic's
    vectors = np.array(emb["vectors"])
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sizes = [len(w) for w in emb["topics"].values()]
    topic = np.repeat(np.arange(len(sizes)), sizes)
    centres = np.stack([unit[topic == t].mean(0) for t in range(len(sizes))])
    assert ((unit @ centres.T).argmax(1) == topic).mean() >= 0.9


def test_with_positions_the_permuted_weights_are_no_permutation(data):
    """Q4, second frame: with the positional encoding, A' ≠ A[π][:, π]."""
    d = data["fig-permutacion-posicion"]
    order = d["order"]
    gap = np.abs(np.array(d["permuted_weights"]) - np.array(d["weights"])[np.ix_(order, order)]).max()
    assert gap > 1e-2 and d["max_difference"] == pytest.approx(gap, abs=1e-6)


def test_index_grows_one_hot_is_blind_sinusoidal_is_relative_and_bounded(data):
    """Q5, against closed forms: ⟨i, j⟩ = i·j grows to (L−1)²; one-hot gives the identity (every
    other position equally far); sinusoidal gives Σ_k cos(ω_k (i − j)) ≤ d/2."""
    d = data["fig-concatenar"]["data"]
    L = len(d["indice"])
    i, j = np.meshgrid(np.arange(L), np.arange(L), indexing="ij")
    np.testing.assert_allclose(d["indice"], i * j)
    np.testing.assert_allclose(d["one_hot"], np.eye(L))
    omega = 10000.0 ** (-np.arange(0, 16, 2) / 16)
    np.testing.assert_allclose(d["sinusoidal"], np.cos(omega * (i - j)[..., None]).sum(-1), atol=1e-4)
    assert np.max(d["sinusoidal"]) <= 8 + 1e-5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_query_looks_at_the_mirrored_input(data, seed):
    """Q6: the output at position q puts (nearly) all its weight on input L − 1 − q."""
    from engine.toy import ReversalConfig, train_reversal

    if seed == 0:
        weights, query = data["fig-mirar"]["data"]["pesos"], data["fig-mirar"]["data"]["consulta"]
    else:
        query = 2
        weights = train_reversal(ReversalConfig(seed=seed)).weights[query]
    assert int(np.argmax(weights)) == len(weights) - 1 - query and max(weights) > 0.9


def test_a_shared_projection_gives_symmetric_scores(data):
    """Q7: with Q = K the scores are symmetric, so the weights obey Kolmogorov's criterion:
    W_ij W_jk W_ki = W_ji W_kj W_ik for every i, j, k (true of softmax rows of a symmetric matrix,
    false in general); separate projections break it."""
    d = data["fig-tres-proyecciones"]["data"]

    def cycle_gap(W):
        W = np.array(W)
        forward = np.einsum("ij,jk,ki->ijk", W, W, W)
        backward = np.einsum("ji,kj,ik->ijk", W, W, W)
        return np.abs(forward - backward).max() / forward.max()

    assert cycle_gap(d["pesos_compartida"]) < 1e-5 and cycle_gap(d["pesos_separadas"]) > 1e-2
    assert d["asimetria"][0] == pytest.approx(0.0, abs=1e-6) and d["asimetria"][1] > 0.5
    assert d["peso_propio"][0] > d["peso_propio"][1]


@pytest.mark.parametrize("seed", range(5))
def test_a_shared_projection_looks_at_itself_on_fresh_data(seed):
    """Q7's second claim on fresh random tokens and projections, with numpy: with Q = K = XW each
    token gives itself more weight, on average, than with independent W_Q, W_K."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((7, 16))
    w_q, w_k = rng.standard_normal((2, 16, 16)) / 4

    def own_weight(q, k):
        scores = q @ k.T / 4
        weights = np.exp(scores - scores.max(1, keepdims=True))
        return (np.diag(weights) / weights.sum(1)).mean()

    assert own_weight(x @ w_q, x @ w_q) > own_weight(x @ w_q, x @ w_k)


def test_a_tokens_output_is_the_weighted_mix_of_the_values(data):
    """Q9: o_i = Σ_j a_ij v_j, with each row of a summing to 1 (recomputed with numpy)."""
    d = data["fig-mezcla"]["data"]
    weights, values = np.array(d["pesos"]), np.array(d["valores"])
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(d["salida"], weights @ values, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_residual_connections_make_a_deep_stack_learn(data, seed):
    """Q10: the same 8 blocks learn to reverse sequences with residual connections and stay at
    chance (ln 10) without them."""
    from engine.toy import train_deep_reversal

    if seed == 0:
        with_skip, without = data["fig-residuales"]["data"]["perdida_con"], data["fig-residuales"]["data"]["perdida_sin"]
    else:
        with_skip = train_deep_reversal(skip=True, seed=seed).losses
        without = train_deep_reversal(skip=False, seed=seed).losses
    assert np.mean(with_skip[-10:]) < 0.15
    assert np.mean(without[-10:]) == pytest.approx(math.log(10), abs=0.1)


def rnn_gradient_reach(seed: int, L: int = 32, d: int = 32) -> np.ndarray:
    """‖∂h_{L−1} / ∂x_t‖_F for each t, by the chain rule written out with numpy (no autograd):
    ∂h_{L−1}/∂x_t = D_{L−1} W_h D_{L−2} W_h … D_t W_x, with D_s = diag(1 − h_s²)."""
    from engine.recurrent import SimpleRNN

    rnn = SimpleRNN(d, d, seed=seed)
    W_x, b, W_h = (p.detach().double().numpy() for p in (rnn.W_x.weight, rnn.W_x.bias, rnn.W_h.weight))
    x = torch.randn(1, L, d, generator=torch.Generator().manual_seed(seed)).double().numpy()[0]
    h, states = np.zeros(d), []
    for t in range(L):
        h = np.tanh(W_x @ x[t] + b + W_h @ h)
        states.append(h)
    reach, v = np.zeros(L), np.ones(d)  # v: 1ᵀ ∂h_{L−1}/∂h_t, from t = L − 1 backwards
    for t in range(L - 1, -1, -1):
        v = v * (1 - states[t] ** 2)  # 1ᵀ ∂h_{L−1}/∂h_t · D_t
        reach[t] = np.linalg.norm(v @ W_x)  # the gradient of sum(h_{L−1}) with respect to x_t
        v = v @ W_h
    return reach[::-1]  # by distance to the last token


def test_an_rnns_gradient_fades_with_distance_attentions_does_not(data):
    """Q11: the RNN's gradient reach, recomputed by the chain rule with numpy, is the figure's;
    it falls by orders of magnitude over the sequence, while self-attention's stays within two."""
    d = data["fig-rnn"]["data"]
    np.testing.assert_allclose(d["alcance_rnn"], rnn_gradient_reach(0), rtol=1e-3)
    rnn, attention = np.array(d["alcance_rnn"]), np.array(d["alcance_atencion"])
    assert rnn[-1] < 1e-4 * rnn[0]
    assert attention.max() / attention.min() < 100


@pytest.mark.parametrize("seed", [1, 2])
def test_an_rnns_gradient_fades_for_other_seeds(seed):
    reach = rnn_gradient_reach(seed)
    assert reach[-1] < 1e-4 * reach[0]
