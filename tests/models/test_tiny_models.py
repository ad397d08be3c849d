"""The tiny test models load and behave like their real families, offline."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer, pipeline

pytestmark = pytest.mark.models

TEXT = "I think, therefore I am."
MASKED_LM = ["bert", "distilbert", "albert", "roberta"]
ALL = [*MASKED_LM, "gpt2"]
# (first, last) special token of a single sequence, and whether the family lower-cases its input.
SPECIALS = {
    "bert": (("[CLS]", "[SEP]"), True),
    "distilbert": (("[CLS]", "[SEP]"), True),
    "albert": (("[CLS]", "[SEP]"), True),
    "roberta": (("<s>", "</s>"), False),
    "gpt2": (None, False),
}
MASK_TOKENS = {"bert": "[MASK]", "distilbert": "[MASK]", "albert": "[MASK]", "roberta": "<mask>"}


def _load_model(path: Path, key: str):
    auto = AutoModelForCausalLM if key == "gpt2" else AutoModelForMaskedLM
    return auto.from_pretrained(path, attn_implementation="eager").eval()


def _piece_text(token: str) -> str:
    """What a token spells in the (normalized) input: drop WordPiece/Metaspace/byte-level space markers."""
    return token.removeprefix("##").replace("▁", " ").replace("Ġ", " ").strip()


def test_build_keys_and_files(tiny_models):
    assert set(tiny_models) == {
        *ALL,
        "bert_encoder",
        "llama",
        "qwen2",
        "mistral",
        "gemma2",
        "phi3",
        "gpt_neox",
    }
    for path in tiny_models.values():
        names = {p.name for p in path.iterdir()}
        assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
        assert not any(name.endswith(".bin") for name in names)


def test_build_is_deterministic(tiny_models, tmp_path):
    from tiny_models import build_tiny_models

    again = build_tiny_models(tmp_path)
    for key, path in tiny_models.items():
        for name in ("tokenizer.json", "model.safetensors", "config.json"):
            first = hashlib.sha256((path / name).read_bytes()).hexdigest()
            second = hashlib.sha256((again[key] / name).read_bytes()).hexdigest()
            assert first == second, f"{key}/{name} differs between builds"


@pytest.mark.parametrize("key", ALL)
def test_tokenizer_round_trip(tiny_models, key):
    tok = AutoTokenizer.from_pretrained(tiny_models[key])
    assert tok.model_max_length == 128
    enc = tok(TEXT, return_offsets_mapping=True, return_special_tokens_mask=True)
    ids, offsets, special = enc["input_ids"], enc["offset_mapping"], enc["special_tokens_mask"]
    tokens = tok.convert_ids_to_tokens(ids)
    ends, lowercase = SPECIALS[key]

    if ends is None:
        assert not any(special)
    else:
        assert (tokens[0], tokens[-1]) == ends
        assert special == [1] + [0] * (len(ids) - 2) + [1]
    assert tok.unk_token_id not in ids, tokens
    assert "therefore" in [_piece_text(t).lower() for t in tokens]

    for token, (start, end), is_special in zip(tokens, offsets, special, strict=True):
        if is_special:
            assert (start, end) == (0, 0)
            continue
        assert 0 <= start < end <= len(TEXT), (token, start, end)
        span = TEXT[start:end].strip()
        assert _piece_text(token) == (span.lower() if lowercase else span), (token, span)

    decoded = tok.decode(ids, skip_special_tokens=True)
    assert decoded == (TEXT.lower() if lowercase else TEXT)


@pytest.mark.parametrize("key", ALL)
def test_config_matches_tokenizer(tiny_models, key):
    tok = AutoTokenizer.from_pretrained(tiny_models[key])
    config = AutoConfig.from_pretrained(tiny_models[key])
    assert config.vocab_size == len(tok)
    assert 150 <= len(tok) <= 1000
    assert config.pad_token_id == tok.pad_token_id
    if key == "gpt2":
        assert tok.pad_token is None and config.pad_token_id is None
        assert tok.bos_token == tok.eos_token == tok.unk_token == "<|endoftext|>"
        assert config.bos_token_id == config.eos_token_id == tok.eos_token_id
        assert config.n_positions == 128
    else:
        assert tok.mask_token == MASK_TOKENS[key]
        assert tok.mask_token_id is not None and tok.mask_token_id != tok.unk_token_id
    if key == "roberta":
        assert (config.bos_token_id, config.eos_token_id) == (tok.bos_token_id, tok.eos_token_id)
        assert config.max_position_embeddings == 130  # positions start at pad_token_id + 1, like 514 for 512
        assert tok.added_tokens_decoder[tok.mask_token_id].lstrip
    if key == "albert":
        assert tok.added_tokens_decoder[tok.mask_token_id].lstrip


@pytest.mark.parametrize("key", ALL)
def test_attentions_are_row_stochastic(tiny_models, key):
    tok = AutoTokenizer.from_pretrained(tiny_models[key])
    model = _load_model(tiny_models[key], key)
    assert model.config._attn_implementation == "eager"
    enc = tok(TEXT, return_tensors="pt")
    n = enc["input_ids"].shape[1]
    with torch.no_grad():
        out = model(**enc, output_attentions=True)
    assert len(out.attentions) == 2
    for layer in out.attentions:
        assert layer.shape == (1, 4, n, n)
        assert (layer >= 0).all()
        torch.testing.assert_close(layer.sum(-1), torch.ones(1, 4, n), atol=1e-5, rtol=0)
        if key == "gpt2":
            assert torch.triu(layer[0], diagonal=1).abs().max() == 0  # causal


@pytest.mark.parametrize("key", ALL)
def test_full_context_runs(tiny_models, key):
    tok = AutoTokenizer.from_pretrained(tiny_models[key])
    model = _load_model(tiny_models[key], key)
    enc = tok(" ".join(["therefore"] * 300), return_tensors="pt", truncation=True)
    assert enc["input_ids"].shape == (1, 128)
    with torch.no_grad():
        out = model(**enc, output_attentions=True)
    assert out.attentions[-1].shape == (1, 4, 128, 128)


@pytest.mark.parametrize("key", MASKED_LM)
def test_fill_mask_pipeline(tiny_models, key):
    fill = pipeline("fill-mask", model=str(tiny_models[key]))
    mask = MASK_TOKENS[key]
    assert fill.tokenizer.mask_token == mask
    results = fill(f"I think, {mask} I am.", top_k=5)
    assert len(results) == 5
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert 0 < sum(scores) <= 1
    for r in results:
        assert isinstance(r["token"], int) and isinstance(r["token_str"], str)
        assert mask not in r["sequence"]


def test_gpt2_greedy_generate(tiny_models):
    tok = AutoTokenizer.from_pretrained(tiny_models["gpt2"])
    model = _load_model(tiny_models["gpt2"], "gpt2")
    enc = tok(TEXT, return_tensors="pt")
    n = enc["input_ids"].shape[1]
    first = model.generate(**enc, max_new_tokens=5, do_sample=False, pad_token_id=tok.eos_token_id)
    second = model.generate(**enc, max_new_tokens=5, do_sample=False, pad_token_id=tok.eos_token_id)
    assert first.shape[0] == 1 and n < first.shape[1] <= n + 5
    assert torch.equal(first, second)
    assert torch.equal(first[0, :n], enc["input_ids"][0])
    assert tok.decode(first[0]).startswith(TEXT)


def test_bert_encoder_reports_missing_head(tiny_models):
    model, info = AutoModelForMaskedLM.from_pretrained(
        tiny_models["bert_encoder"], attn_implementation="eager", output_loading_info=True
    )
    assert type(model).__name__ == "BertForMaskedLM"
    missing = set(info["missing_keys"])
    assert missing and all(key.startswith("cls.predictions.") for key in missing)
    assert "cls.predictions.transform.dense.weight" in missing
    assert AutoTokenizer.from_pretrained(tiny_models["bert_encoder"]).mask_token == "[MASK]"


def test_minilm_path_fixture(minilm_path):
    assert (minilm_path / "config.json").is_file()
