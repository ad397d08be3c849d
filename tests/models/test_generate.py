"""Generation on the tiny GPT-2: greedy ids equal model.generate, sampling repeats by seed, and each step's
attention row equals the full-sequence attention computed without the KV cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from visualizeai.config import Settings
from visualizeai.errors import InputError, TaskUnsupported
from visualizeai.service import Service

pytestmark = pytest.mark.models

PROMPTS = [
    "I think, therefore",
    "The quick brown fox",
    "What is the capital of France? Paris",
    "She sells sea shells",
]


@pytest.fixture(scope="module")
def service(tiny_models):
    root = next(iter(tiny_models.values())).parent
    return Service(Settings(allowed_roots=(root,), offline=True, model_cache_size=8))


@pytest.fixture(scope="module")
def gpt2(tiny_models):
    """The tiny GPT-2 straight from transformers, as the reference."""
    path = tiny_models["gpt2"]
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager").eval()
    return tokenizer, model


def run(service, tiny_models, prompt, n, **options):
    generation = service.generate(prompt, str(tiny_models["gpt2"]), n, **options)
    return generation, list(generation.steps)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_equals_model_generate(service, tiny_models, gpt2, prompt):
    tokenizer, model = gpt2
    generation, steps = run(service, tiny_models, prompt, 12)
    enc = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        expected = model.generate(
            **enc, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.eos_token_id
        )
    assert generation.prompt_ids == enc["input_ids"][0].tolist()
    assert [s.token_id for s in steps] == expected[0, enc["input_ids"].shape[1] :].tolist()
    assert generation.finish_reason == "length" and generation.greedy and generation.seed is None


def test_greedy_stops_at_eos_like_model_generate(service, tiny_models, gpt2, monkeypatch):
    tokenizer, model = gpt2
    prompt = PROMPTS[0]
    _, free = run(service, tiny_models, prompt, 1)
    stop = free[0].token_id  # pretend the first greedy token is the end of text
    loaded = service.model(str(tiny_models["gpt2"]))
    monkeypatch.setattr(loaded.model.generation_config, "eos_token_id", stop)
    generation, steps = run(service, tiny_models, prompt, 10)
    enc = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        expected = model.generate(
            **enc, max_new_tokens=10, do_sample=False, eos_token_id=stop, pad_token_id=stop
        )
    assert [s.token_id for s in steps] == expected[0, enc["input_ids"].shape[1] :].tolist()
    assert len(steps) == 1 and generation.finish_reason == "eos"


def test_seeded_sampling_is_reproducible(service, tiny_models):
    _, first = run(service, tiny_models, PROMPTS[1], 12, greedy=False, seed=7)
    generation, again = run(service, tiny_models, PROMPTS[1], 12, greedy=False, seed=7)
    _, other = run(service, tiny_models, PROMPTS[1], 12, greedy=False, seed=8)
    _, greedy = run(service, tiny_models, PROMPTS[1], 12)
    ids = [s.token_id for s in first]
    assert ids == [s.token_id for s in again] and generation.seed == 7 and not generation.greedy
    assert ids != [s.token_id for s in other]
    assert ids != [s.token_id for s in greedy]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.attention, b.attention)


@pytest.mark.parametrize("greedy", [True, False])
def test_step_attention_equals_full_sequence_without_cache(service, tiny_models, gpt2, greedy):
    tokenizer, model = gpt2
    prompt = PROMPTS[2]
    generation, steps = run(service, tiny_models, prompt, 10, greedy=greedy, seed=3)
    p = len(generation.prompt_ids)
    ids = generation.prompt_ids + [s.token_id for s in steps]
    worst = 0.0
    for step in steps:
        t = p + step.index
        assert step.attention.dtype == np.float32 and step.attention.shape == (2, 4, t)
        np.testing.assert_allclose(step.attention.sum(-1), 1.0, atol=1e-5)
        with torch.no_grad():
            out = model(torch.tensor([ids[:t]]), use_cache=False, output_attentions=True)
        full = torch.stack(out.attentions)[:, 0, :, -1, :].numpy()  # last query row: [layers, heads, t]
        worst = max(worst, float(np.abs(step.attention - full).max()))
    assert worst < 1e-5


def test_generated_text_is_the_decoded_ids(service, tiny_models, gpt2):
    tokenizer, _ = gpt2
    _, steps = run(service, tiny_models, PROMPTS[0], 15, greedy=False, seed=11)
    assert "".join(s.text for s in steps) == tokenizer.decode([s.token_id for s in steps])
    assert all(s.token == tokenizer.convert_ids_to_tokens(s.token_id) and s.display for s in steps)


def test_context_limit_ends_generation(service, tiny_models):
    loaded = service.model(str(tiny_models["gpt2"]))
    prompt = " ".join(["the cat sat on the mat"] * 40)
    ids = loaded.tokenizer(prompt)["input_ids"]
    room = 5
    prompt = loaded.tokenizer.decode(ids[: loaded.max_length - room])
    generation, steps = run(service, tiny_models, prompt, 20)
    assert len(generation.prompt_ids) == loaded.max_length - room
    assert len(steps) == room and generation.finish_reason == "context"
    assert steps[-1].attention.shape[-1] == loaded.max_length - 1
    with pytest.raises(InputError, match="no room to generate"):
        service.generate(" ".join(["the cat sat on the mat"] * 40), str(tiny_models["gpt2"]), 5)


def test_causal_analysis_is_lower_triangular_with_next_token(service, tiny_models, gpt2):
    tokenizer, model = gpt2
    result = service.analyze(PROMPTS[0], str(tiny_models["gpt2"])).result
    assert result.model_kind == "causal-lm"
    upper = np.triu(np.ones((result.n, result.n), dtype=bool), k=1)
    assert (result.attentions[:, :, upper] == 0).all()
    assert (result.attentions[:, :, ~upper] > 0).all()
    np.testing.assert_allclose(result.attentions.sum(-1), 1.0, atol=1e-5)
    (prediction,) = result.predictions
    assert prediction.kind == "next" and prediction.position == result.n - 1
    with torch.no_grad():
        probs = model(**tokenizer(PROMPTS[0], return_tensors="pt")).logits[0, -1].softmax(-1)
    top = probs.topk(len(prediction.candidates))
    assert [c.token_id for c in prediction.candidates] == top.indices.tolist()
    np.testing.assert_allclose([c.score for c in prediction.candidates], top.values.numpy(), atol=1e-6)
    # the greedy first token is the top next-token prediction
    _, steps = run(service, tiny_models, PROMPTS[0], 1)
    assert steps[0].token_id == prediction.candidates[0].token_id


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_masked_lm_cannot_generate(service, tiny_models, family):
    with pytest.raises(TaskUnsupported, match="causal language model"):
        service.generate("I think", str(tiny_models[family]), 5)


@pytest.mark.parametrize("n", [0, -1, 513, True])
def test_max_new_tokens_is_checked(service, tiny_models, n):
    with pytest.raises(InputError, match="max_new_tokens"):
        service.generate("I think", str(tiny_models["gpt2"]), n)


def test_steps_run_lazily_and_hold_the_lock_per_step(service, tiny_models):
    loaded = service.model(str(tiny_models["gpt2"]))
    generation = service.generate("I think", str(tiny_models["gpt2"]), 3)
    assert generation.finish_reason is None  # nothing has run yet
    first = next(generation.steps)
    assert first.index == 0 and not loaded.lock.locked()  # released between steps
    assert len(list(generation.steps)) == 2 and generation.finish_reason == "length"


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_reduced_precision_weights_give_float32_attention(tiny_models, dtype):
    """Half-precision weights (the GPU setting) still hand float32 attention and scores to the analysis."""
    root = next(iter(tiny_models.values())).parent
    service = Service(Settings(allowed_roots=(root,), offline=True, dtype=dtype, device="cpu"))
    steps = list(service.generate("She sells sea shells", str(tiny_models["gpt2"]), 3).steps)
    assert all(s.attention.dtype == np.float32 for s in steps)
    np.testing.assert_allclose([s.attention.sum(-1) for s in steps][0], 1.0, atol=1e-2)
    result = service.fill_mask("I [MASK] it.", str(tiny_models["roberta"]), 3).result
    assert result.attentions.dtype == np.float32 and len(result.predictions[0].candidates) == 3
    assert isinstance(result.predictions[0].candidates[0].score, float)
