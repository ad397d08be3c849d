"""Captured queries and keys against transformers' eager ``output_attentions=True``, on every family.

Tiny random-weight models of each family (tests/tiny_models.py) and the embedded MiniLM load through the
app's own ``load_model``; their self-check must put them in captured mode, and the weights recomputed from
what the forward pass recorded must equal eager attention.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoModelForCausalLM

from visualizeai.attention import capture
from visualizeai.attention.capture import recording, set_mode
from visualizeai.models.catalog import ModelSpec
from visualizeai.models.inference import analyze_text
from visualizeai.models.loading import load_model

pytestmark = pytest.mark.models

ENCODERS = ["bert", "distilbert", "albert", "roberta"]
DECODERS = ["gpt2", "llama", "qwen2", "mistral", "gemma2", "phi3", "gpt_neox"]
# Longer than the tiny Mistral's and Gemma 2's sliding window (8 tokens), so the window shapes the weights.
TEXT = (
    "The quick brown fox jumps over the lazy dog, and then the dog sleeps while the fox runs far away into "
    "the green forest near the river, where it waits."
)

# Long enough that queries and keys take fewer bytes than dense weights (shorter inputs are held dense).
LONG_TEXT = " ".join([TEXT] * 3)


def spec(path, kind) -> ModelSpec:
    return ModelSpec(id=str(path), source="local", location=str(path), kind=kind)


def kind_of(family: str) -> str:
    return "causal-lm" if family in DECODERS else "masked-lm"


@pytest.fixture(scope="module")
def loaded(tiny_models, minilm_path):
    """Every family loaded once through the app's loader, keyed like ``tiny_models`` plus ``minilm``."""
    models = {f: load_model(spec(tiny_models[f], kind_of(f)), device="cpu") for f in ENCODERS + DECODERS}
    models["minilm"] = load_model(spec(minilm_path, "encoder"), device="cpu")
    return models


def eager_reference(path, family, inputs, dtype=torch.float32) -> np.ndarray:
    """float32 ``[layers, heads, n, n]`` from an independently loaded eager model."""
    auto = AutoModelForCausalLM if family in DECODERS else AutoModel
    model = auto.from_pretrained(path, attn_implementation="eager", dtype=dtype).eval()
    with torch.inference_mode():
        out = model(**inputs, output_attentions=True)
    return torch.stack(out.attentions)[:, 0].float().numpy()


def encode(loaded_model, text=TEXT):
    enc = loaded_model.tokenizer(
        text, return_tensors="pt", truncation=True, max_length=loaded_model.max_length
    )
    return {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}


def recorded(loaded_model, inputs, eager_output=False):
    with torch.inference_mode(), recording(eager_output=eager_output) as recorder:
        loaded_model.model(**inputs)
    return recorder.store().dense()


@pytest.mark.parametrize("family", ENCODERS + DECODERS + ["minilm"])
def test_self_check_puts_every_family_in_captured_mode(loaded, family):
    check = loaded[family].attention_check
    assert loaded[family].attention_mode == "captured", check.reason
    assert check.max_difference <= 1e-5 and check.bytes_per_token > 0
    assert loaded[family].model.config._attn_implementation == capture.CAPTURE


@pytest.mark.parametrize("family", ENCODERS + DECODERS)
def test_recomputed_attention_equals_eager(loaded, tiny_models, family):
    """With eager arithmetic for the layer outputs, every layer and head equals eager within 1e-6."""
    inputs = encode(loaded[family])
    expected = eager_reference(tiny_models[family], family, inputs)
    got = recorded(loaded[family], inputs, eager_output=True)
    assert got.shape == expected.shape and got.shape[:2] == (2, 4)
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("family", ENCODERS + DECODERS)
def test_analysis_equals_eager(loaded, tiny_models, family):
    """The app's analysis against eager attention: SDPA computes the layer outputs and rounds differently
    from eager's matmuls (about 1e-6 on later layers), so the bound is 1e-5; the recomputation itself is
    exact (the test above)."""
    result = analyze_text(loaded[family], LONG_TEXT)
    expected = eager_reference(tiny_models[family], family, encode(loaded[family], LONG_TEXT))
    assert result.attention.mode == "captured"
    np.testing.assert_allclose(result.attentions, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(result.attentions[0], expected[0], atol=1e-6, rtol=0)  # same inputs: exact


def test_minilm_at_512_tokens_equals_eager(loaded, minilm_path):
    text = " ".join(["Attention is all you need, or so the paper says."] * 60)
    inputs = encode(loaded["minilm"], text)
    assert inputs["input_ids"].shape[1] == 512
    expected = eager_reference(minilm_path, "minilm", inputs)
    np.testing.assert_allclose(recorded(loaded["minilm"], inputs, eager_output=True), expected, atol=1e-6)
    # SDPA's kernels round differently from eager's matmuls; the drift through six layers stays this small
    result = analyze_text(loaded["minilm"], text)
    assert result.attention.mode == "captured"
    np.testing.assert_allclose(result.attentions, expected, atol=1e-5, rtol=0)


def test_windows_and_soft_capping_shape_the_weights(loaded):
    inputs = encode(loaded["mistral"])
    n = inputs["input_ids"].shape[1]
    weights = recorded(loaded["mistral"], inputs)
    i, j = np.indices((n, n))
    assert n > 16 and np.all(weights[:, :, (i - j >= 8)] == 0)  # Mistral: window of 8 on every layer
    gemma = recorded(loaded["gemma2"], encode(loaded["gemma2"]))
    far = i - j >= 8
    windowed = [bool(np.all(gemma[layer][:, far] == 0)) for layer in range(2)]
    assert sorted(windowed) == [False, True]  # Gemma 2 alternates sliding and full layers


@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen2", "mistral", "phi3", "gpt_neox", "bert"])
def test_capture_changes_no_output(loaded, family):
    """Recording is invisible: logits with capture equal those of transformers' own SDPA."""
    model, inputs = loaded[family].model, encode(loaded[family])
    with torch.inference_mode(), recording():
        captured = model(**inputs).logits
    set_mode(model, "sdpa")
    try:
        with torch.inference_mode():
            sdpa = model(**inputs).logits
    finally:
        set_mode(model, capture.CAPTURE)
    assert torch.equal(captured, sdpa)


def test_soft_capped_output_equals_eager(loaded, tiny_models):
    """Gemma 2's soft-capping is beyond SDPA: capture computes its output from the recomputed weights."""
    model, inputs = loaded["gemma2"].model, encode(loaded["gemma2"])
    with torch.inference_mode():
        captured = model(**inputs).logits
    eager = AutoModelForCausalLM.from_pretrained(tiny_models["gemma2"], attn_implementation="eager").eval()
    with torch.inference_mode():
        expected = eager(**inputs).logits
    torch.testing.assert_close(captured, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("family", ["llama", "gemma2", "gpt2", "bert"])
def test_half_precision_is_at_least_as_close_as_eager(tiny_models, family, dtype):
    """In bf16/fp16, recomputed weights are no further from float32 eager than eager in that dtype is."""
    name = "float16" if dtype == torch.float16 else "bfloat16"
    half = load_model(spec(tiny_models[family], kind_of(family)), device="cpu", dtype=name)
    assert half.attention_mode == "captured", half.attention_check.reason
    inputs = encode(half)
    reference = eager_reference(tiny_models[family], family, inputs)
    eager_half = eager_reference(tiny_models[family], family, inputs, dtype=dtype)
    got = recorded(half, inputs)
    ours, theirs = np.abs(got - reference).max(), np.abs(eager_half - reference).max()
    assert ours <= theirs, (ours, theirs)


def test_a_model_that_fails_the_self_check_runs_dense(tiny_models, monkeypatch):
    monkeypatch.setitem(capture.SELF_CHECK_TOLERANCE, torch.float32, (-1.0, 1.0))
    fallback = load_model(spec(tiny_models["llama"], "causal-lm"), device="cpu")
    assert fallback.attention_mode == "dense"
    assert "differs from eager" in fallback.attention_check.reason
    assert fallback.model.config._attn_implementation == "eager"
    result = analyze_text(fallback, LONG_TEXT)
    assert result.attention.mode == "dense"
    expected = eager_reference(tiny_models["llama"], "llama", encode(fallback, LONG_TEXT))
    np.testing.assert_allclose(result.attentions, expected, atol=1e-6, rtol=0)


def test_a_wrong_mask_fails_the_self_check_in_half_precision(tiny_models, monkeypatch):
    """A recomputation that ignored causality would pass a loose bf16 tolerance on its largest gap alone."""
    real = capture.mask_intervals
    monkeypatch.setattr(capture, "mask_intervals", lambda mask, q, k, causal: real(mask, q, k, False))
    wrong = load_model(spec(tiny_models["llama"], "causal-lm"), device="cpu", dtype="bfloat16")
    assert wrong.attention_mode == "dense"
    assert (
        "differs from eager" in wrong.attention_check.reason or "masked keys" in wrong.attention_check.reason
    )


def test_a_short_input_is_held_dense_when_that_is_smaller(loaded, tiny_models):
    result = analyze_text(loaded["llama"], "I think.")
    assert result.attention.mode == "dense"
    vectors = sum(layer.nbytes for layer in result.attention.captured)  # kept for the vector views
    assert 4 * 2 * 4 * result.n**2 <= vectors
    assert result.attention.nbytes == 4 * 2 * 4 * result.n**2 + vectors
    expected = eager_reference(tiny_models["llama"], "llama", encode(loaded["llama"], "I think."))
    np.testing.assert_allclose(result.attentions, expected, atol=1e-6, rtol=0)


def test_fused_projections_are_not_kept_whole(loaded):
    """GPT-2 splits one fused query/key/value output: the recorded query and key must not pin the values."""
    with torch.inference_mode(), recording() as recorder:
        loaded["gpt2"].model(**encode(loaded["gpt2"], LONG_TEXT))
    for layer in recorder.layers:
        for tensor in (layer.query, layer.key):
            assert tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_capture_changes_no_output_in_bfloat16(tiny_models, family):
    """The CPU flash kernel called for its log-sum-exp hands back the very output SDPA does, in bf16 too."""
    half = load_model(spec(tiny_models[family], kind_of(family)), device="cpu", dtype="bfloat16")
    inputs = encode(half, LONG_TEXT)
    with torch.inference_mode(), recording() as recorder:
        captured = half.model(**inputs).logits
    assert all(layer.lse is not None for layer in recorder.layers)
    set_mode(half.model, "sdpa")
    with torch.inference_mode():
        sdpa = half.model(**inputs).logits
    assert torch.equal(captured, sdpa)


KEEPS_LSE = {"bert": True, "gpt2": True, "llama": True, "qwen2": True, "phi3": True, "gpt_neox": True,
             "mistral": False, "gemma2": False}  # fmt: skip


@pytest.mark.parametrize("family", list(KEEPS_LSE))
def test_the_forward_keeps_each_rows_log_sum_exp(loaded, family):
    """Layers that SDPA runs on the CPU flash kernel without a mask keep its per-row log-sum-exp (sliding
    windows pass a mask, soft-capping is computed here): equal to one from the recorded queries and keys in
    float64; the whole max-pooled picture drawn from it equals the softmax pass's within 2e-6 relative."""
    inputs = encode(loaded[family], LONG_TEXT)
    with torch.inference_mode(), recording() as recorder:
        loaded[family].model(**inputs)
    store = recorder.store()
    for index, layer in enumerate(store.captured):
        assert (layer.lse is not None) is KEEPS_LSE[family]
        assert store.has_quick_picture(index) is KEEPS_LSE[family]
        if layer.lse is None:
            assert store.quick_max_picture(index, 0, 4) is None
            continue
        q = layer.query[0].double()
        k = layer.key[0].double().repeat_interleave(layer.group, 0)
        scores = (q @ k.transpose(-1, -2)) * layer.scaling
        keys = torch.arange(scores.shape[-1])
        allowed = (keys[None, :] >= layer.lo[0][:, None]) & (keys[None, :] < layer.hi[0][:, None])
        expected = torch.logsumexp(scores.masked_fill(~allowed, float("-inf")), -1)
        assert (layer.lse[0].double() - expected).abs().max() < 1e-5
        for head in range(store.heads):
            quick, exact = store.quick_max_picture(index, head, 4), store.max_picture(index, head, 4)
            np.testing.assert_allclose(quick, exact, rtol=2e-6, atol=1e-9)
