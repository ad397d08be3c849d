"""The tiny modern decoder LMs (Llama, Qwen2, Mistral, Gemma 2, Phi-3, GPT-NeoX) load through ``load_model``
and their eager attention has the structure the families are known for: grouped queries, sliding windows,
logit soft-capping, partial rotary embeddings, and peaked (not uniform) rows."""

from __future__ import annotations

import pytest
import tiny_models as recipes  # tests/tiny_models.py; the fixture of that name gives paths
import torch
from transformers import AutoTokenizer

from visualizeai.models.catalog import ModelSpec
from visualizeai.models.loading import load_model
from visualizeai.models.quirks import QUIRKS, quirks_for

pytestmark = pytest.mark.models

DECODERS = ["llama", "qwen2", "mistral", "gemma2", "phi3", "gpt_neox"]
# 37 tokens or so: well past the sliding window of 8.
TEXT = (
    "I think, therefore I am. The cat sat on the mat, and the dog sat on the log. "
    "Why do we think? Because we are."
)
WINDOW = recipes.WINDOW
LAYERS, HEADS = 2, 4
KV_HEADS = {"llama": 2, "qwen2": 2, "mistral": 2, "gemma2": 2, "phi3": 4, "gpt_neox": 4}
HEAD_DIM = {"gemma2": 24}  # the others: hidden 64 / 4 heads
# The token each family's tokenizer prepends (as its real hub tokenizer does), None: nothing is prepended.
BOS = {
    "llama": "<|begin_of_text|>",
    "mistral": "<s>",
    "gemma2": "<bos>",
    "qwen2": None,
    "phi3": None,
    "gpt_neox": None,
}
# Which layers slide a window over the keys, per family (the others attend to the whole prefix).
WINDOWED = {"mistral": {0, 1}, "gemma2": {0}}
# Texts for tokenizer identity between the built and the reloaded tokenizer: digits, punctuation, accents,
# newlines, runs of spaces, a special token written in the text.
TOKENIZER_TEXTS = [
    TEXT,
    "In 1905, Einstein published four papers; call 555-0123 after 9 p.m.!",
    "  Leading spaces,\ttabs\nand new\n\nlines  ",
    "Café naïve façade — “quotes” and ünïcödé 日本語",
    "therefore<|endoftext|>the <s> end",
]


@pytest.fixture(scope="module")
def loaded(tiny_models):
    # capture=False: the model keeps transformers' eager attention, whose weights these tests inspect
    specs = {key: ModelSpec(id=key, source="local", location=str(tiny_models[key])) for key in DECODERS}
    return {key: load_model(spec, device="cpu", capture=False) for key, spec in specs.items()}


def _attentions(loaded_model, text: str = TEXT) -> tuple[torch.Tensor, dict]:
    """Eager attention as [layers, heads, n, n] (batch of one), and the encoding it was computed for."""
    enc = loaded_model.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        out = loaded_model.model(**enc, output_attentions=True)
    return torch.stack(out.attentions)[:, 0], enc


def _visible(n: int, window: int | None) -> torch.Tensor:
    """[n, n] True where query i may attend to key j: causal, and within ``window`` keys (self included)."""
    i = torch.arange(n)[:, None]
    j = torch.arange(n)[None, :]
    mask = j <= i
    if window is not None:
        mask &= i - j < window
    return mask


@pytest.mark.parametrize("key", DECODERS)
def test_loads_as_causal_lm_with_trained_head(loaded, key):
    lm = loaded[key]
    config = lm.model.config
    assert lm.kind == "causal-lm"
    assert lm.lm_head_trained and lm.missing_keys == ()
    assert config.model_type == key
    assert config._attn_implementation == "eager"
    assert key in QUIRKS and lm.quirks == quirks_for(key)
    assert lm.max_length == 256 == config.max_position_embeddings
    assert (config.num_hidden_layers, config.num_attention_heads) == (LAYERS, HEADS)
    assert getattr(config, "num_key_value_heads", HEADS) == KV_HEADS[key]
    assert config.vocab_size == len(lm.tokenizer)


@pytest.mark.parametrize("key", DECODERS)
def test_tokenizer_round_trip(loaded, tiny_models, key):
    tok = loaded[key].tokenizer
    # What was saved reloads to a tokenizer that encodes exactly like the one built in memory.
    built = getattr(recipes, f"_{key}_tokenizer")()
    reloaded = AutoTokenizer.from_pretrained(tiny_models[key])
    assert type(reloaded) is type(tok)
    for text in TOKENIZER_TEXTS:
        a = built(text, return_offsets_mapping=True)
        b = reloaded(text, return_offsets_mapping=True)
        assert a["input_ids"] == b["input_ids"], text
        assert a["offset_mapping"] == b["offset_mapping"], text

    enc = tok(TEXT, return_offsets_mapping=True, return_special_tokens_mask=True)
    ids, offsets, special = enc["input_ids"], enc["offset_mapping"], enc["special_tokens_mask"]
    tokens = tok.convert_ids_to_tokens(ids)
    if BOS[key] is None:
        assert not any(special)
    else:
        assert tokens[0] == BOS[key] == tok.bos_token
        assert special == [1] + [0] * (len(ids) - 1)
    assert tok.unk_token_id is None or tok.unk_token_id not in ids
    assert "Ġtherefore" in tokens
    for token, (start, end), is_special in zip(tokens, offsets, special, strict=True):
        if is_special:
            assert (start, end) == (0, 0)
            continue
        # byte-level pieces: offsets keep the space a "Ġ" piece encodes (trim_offsets=False, like Llama 3)
        assert TEXT[start:end] == token.replace("Ġ", " "), (token, start, end)
    assert tok.decode(ids, skip_special_tokens=True) == TEXT
    for text in TOKENIZER_TEXTS[:4]:
        assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text


@pytest.mark.parametrize("key", DECODERS)
def test_attentions_are_causal_and_row_stochastic(loaded, key):
    attn, enc = _attentions(loaded[key])
    n = enc["input_ids"].shape[1]
    assert n >= 4 * WINDOW
    assert attn.shape == (LAYERS, HEADS, n, n)
    assert (attn >= 0).all()
    torch.testing.assert_close(attn.sum(-1), torch.ones(LAYERS, HEADS, n), atol=1e-5, rtol=0)
    far = ~_visible(n, WINDOW) & _visible(n, None)  # keys behind a query, further back than the window
    for layer in range(LAYERS):
        windowed = layer in WINDOWED.get(key, ())
        visible = _visible(n, WINDOW if windowed else None)
        assert (attn[layer][:, ~visible] == 0).all(), f"layer {layer} attends to masked keys"
        if key != "gemma2":  # soft-capped scores span up to 100, so weights go down to e**-100 (denormal)
            assert (attn[layer][:, visible] > 0).all(), f"layer {layer} ignores a key it may see"
        if not windowed:  # a full-attention layer does reach back beyond the window, in every head
            reach = (attn[layer] * far).sum(-1)[:, WINDOW:]  # [heads, queries]: weight on far keys
            assert (reach.mean(-1) > 0.05).all() and (reach[:, -1] > 0.05).all()


@pytest.mark.parametrize("key", DECODERS)
def test_attention_is_peaked(loaded, key):
    """Rows are far from uniform, so a parity test that mixes up heads or keys fails loudly."""
    attn, enc = _attentions(loaded[key])
    n = enc["input_ids"].shape[1]
    for layer in range(LAYERS):
        window = WINDOW if layer in WINDOWED.get(key, ()) else None
        keys = _visible(n, window).sum(-1)  # keys each query sees
        ratio = attn[layer].max(-1).values * keys  # 1.0 for a uniform row
        assert ratio[:, 8:].mean() > 3, f"layer {layer}: max weight only {ratio[:, 8:].mean():.2f}x uniform"
        # heads differ from one another, grouped heads included
        for a in range(HEADS):
            for b in range(a + 1, HEADS):
                assert (attn[layer, a] - attn[layer, b]).abs().max() > 0.05


def test_mistral_sliding_window_bites(loaded):
    attn, enc = _attentions(loaded["mistral"])
    n = enc["input_ids"].shape[1]
    last = attn[:, :, -1]  # [layers, heads, n]: the last query's row
    assert (last[..., : n - WINDOW] == 0).all()  # exactly 0 on keys further back than the window
    assert ((last > 0).sum(-1) == WINDOW).all()  # and exactly WINDOW keys (self included) get weight
    torch.testing.assert_close(last[..., n - WINDOW :].sum(-1), torch.ones(LAYERS, HEADS), atol=1e-5, rtol=0)
    # Without the window the same weights do attend further back: the window is what zeroes those keys.
    model = loaded["mistral"].model
    model.config.sliding_window = None
    try:
        unwindowed, _ = _attentions(loaded["mistral"])
    finally:
        model.config.sliding_window = WINDOW
    assert (unwindowed[:, :, -1, : n - WINDOW] > 0).all()


def test_gemma2_alternates_windowed_and_full_layers(loaded):
    config = loaded["gemma2"].model.config
    assert config.layer_types == ["sliding_attention", "full_attention"]
    assert (config.sliding_window, config.head_dim, config.query_pre_attn_scalar) == (WINDOW, 24, 16)
    attn, enc = _attentions(loaded["gemma2"])
    n = enc["input_ids"].shape[1]
    sliding, full = attn[0, :, -1], attn[1, :, -1]
    assert (sliding[:, : n - WINDOW] == 0).all()
    torch.testing.assert_close(sliding[:, n - WINDOW :].sum(-1), torch.ones(HEADS), atol=1e-5, rtol=0)
    assert (
        full[:, : n - WINDOW].sum(-1) > 0.05
    ).all()  # the global layer reaches past the window, every head


def test_gemma2_attention_softcap_bites(loaded):
    """Raw scores go well past attn_logit_softcapping=50: removing the cap changes the attention."""
    lm = loaded["gemma2"]
    assert lm.model.config.attn_logit_softcapping == 50.0
    capped, _ = _attentions(lm)
    modules = [layer.self_attn for layer in lm.model.model.layers]
    for module in modules:
        module.attn_logit_softcapping = None
    try:
        uncapped, _ = _attentions(lm)
    finally:
        for module in modules:
            module.attn_logit_softcapping = 50.0
    for layer in range(LAYERS):
        assert (capped[layer] - uncapped[layer]).abs().max() > 0.2, f"layer {layer}: the cap does not bite"


def test_gemma2_final_logit_softcap_bites(loaded):
    lm = loaded["gemma2"]
    cap = lm.model.config.final_logit_softcapping
    assert cap == 30.0
    enc = lm.tokenizer(TEXT, return_tensors="pt")
    with torch.no_grad():
        logits = lm.model(**enc).logits
        raw = lm.model.lm_head(lm.model.model(**enc).last_hidden_state)
    assert raw.abs().max() > 2 * cap and logits.abs().max() < cap
    torch.testing.assert_close(logits, cap * torch.tanh(raw / cap))


def test_gqa_heads_share_key_value_projections(loaded):
    for key in ("llama", "qwen2", "mistral", "gemma2"):
        attn = loaded[key].model.model.layers[0].self_attn
        head_dim = HEAD_DIM.get(key, 16)
        assert attn.q_proj.out_features == HEADS * head_dim
        assert attn.k_proj.out_features == attn.v_proj.out_features == KV_HEADS[key] * head_dim


def test_qwen2_attention_biases_are_used(loaded):
    attn = loaded["qwen2"].model.model.layers[0].self_attn
    for proj in (attn.q_proj, attn.k_proj, attn.v_proj):
        assert proj.bias is not None and proj.bias.abs().max() > 0.05
    assert attn.o_proj.bias is None
    assert loaded["qwen2"].model.config.tie_word_embeddings


def test_gpt_neox_partial_rotary(loaded):
    model = loaded["gpt_neox"].model
    assert model.config.rope_parameters["partial_rotary_factor"] == 0.25
    attention = model.gpt_neox.layers[0].attention
    assert (attention.head_size, attention.rotary_ndims) == (16, 4)
    assert attention.query_key_value.bias.abs().max() > 0.05
    assert model.config.use_parallel_residual


def test_phi3_fused_projections(loaded):
    attn = loaded["phi3"].model.model.layers[0].self_attn
    assert attn.qkv_proj.out_features == 3 * 64
    assert loaded["phi3"].model.config.sliding_window is None


@pytest.mark.parametrize("key", DECODERS)
def test_build_files_and_greedy_generate(loaded, tiny_models, key):
    names = {p.name for p in tiny_models[key].iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert not any(name.endswith(".bin") for name in names)
    lm = loaded[key]
    enc = lm.tokenizer(TEXT, return_tensors="pt")
    n = enc["input_ids"].shape[1]
    kwargs = dict(max_new_tokens=12, do_sample=False, pad_token_id=lm.tokenizer.eos_token_id)
    first = lm.model.generate(**enc, **kwargs)  # past the window for mistral/gemma2: the cache slides
    second = lm.model.generate(**enc, **kwargs)
    assert torch.equal(first, second) and torch.equal(first[0, :n], enc["input_ids"][0])
    assert n < first.shape[1] <= n + 12
