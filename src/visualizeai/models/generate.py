"""Text generation with a causal LM, one token at a time, with the attention that chose each token.

Each step runs the model on the newest token with the KV cache (the whole prompt on the first step). The
attention row of that step's last query (the one that produced the next token) over every earlier position
is exactly the last row of the full-sequence attention. In captured mode the step runs SDPA under
``recording()`` and only that row is recomputed from the recorded query and the cached keys, so a long prompt
never builds n×n; in dense mode (models that failed the load-time self-check) it comes from eager
``output_attentions=True``. Greedy decoding picks the argmax (token ids equal
``model.generate(do_sample=False)``); sampling draws from a seeded ``torch.Generator``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from visualizeai.attention.capture import recording
from visualizeai.attention.captured import CaptureUnsupported, LayerQK, weights
from visualizeai.errors import InputError, TaskUnsupported
from visualizeai.models.inference import EMPTY_TEXT
from visualizeai.models.loading import LoadedModel
from visualizeai.models.predict import has_lm_head
from visualizeai.models.tokens import WHITESPACE_TOKEN, display_tokens

MAX_NEW_TOKENS = 512
DEFAULT_NEW_TOKENS = 20
DEFAULT_SAMPLING_TOP_K = 50  # like transformers' GenerationConfig default for do_sample=True
REPLACEMENT_CHAR = "\ufffd"
NEWLINE_TOKEN = "⏎"


@dataclass(frozen=True)
class GenerationStep:
    """One generated token and the attention that produced it.

    Attributes:
        index: 0 for the first generated token.
        token_id: vocabulary id.
        token: vocabulary form (``Ġthe``).
        display: the token as a person reads it (``the``; ``␣`` / ``⏎`` for whitespace).
        text: the characters this step appends to the decoded output; empty while a multi-byte character is
            still incomplete (byte-level BPE), in which case a later step appends it.
        attention: float32 ``[layers, heads, t]``: the attention row of the query that produced this token
            (the last token of the context) over all ``t`` context positions, ``t = prompt length + index``.
    """

    index: int
    token_id: int
    token: str
    display: str
    text: str
    attention: np.ndarray  # float32 [layers, heads, t]


@dataclass
class Generation:
    """A generation under way: the prompt's tokens, and ``steps``, an iterator that runs the model lazily.

    ``finish_reason`` is set once ``steps`` is exhausted: "length" (max_new_tokens reached), "eos" (the model
    produced its end-of-sequence token, which is the last step) or "context" (the model's maximum length).
    """

    model_id: str
    revision: str
    prompt: str
    prompt_ids: list[int]
    prompt_tokens: list[str]
    prompt_display: list[str]
    layers: int
    heads: int
    max_new_tokens: int
    greedy: bool
    seed: int | None
    steps: Iterator[GenerationStep] = field(repr=False, default_factory=lambda: iter(()))
    finish_reason: str | None = None


def check_generate(loaded: LoadedModel) -> None:
    """Raise TaskUnsupported unless ``loaded`` is a causal LM with all its weights."""
    name = loaded.spec.label
    if loaded.kind != "causal-lm" or not has_lm_head(loaded):
        raise TaskUnsupported(
            f"{name} is a {loaded.kind} model, not a causal language model; "
            "generation needs one (GPT-2 family)."
        )
    if not loaded.lm_head_trained:
        raise TaskUnsupported(
            f"{name} cannot generate: its checkpoint lacks {len(loaded.missing_keys)} of the model's "
            "weights, so its output would be random."
        )


def _display(token: str, text: str, loaded: LoadedModel) -> str:
    if text.strip():
        return text.strip()
    if "\n" in text:
        return NEWLINE_TOKEN
    if text:
        return WHITESPACE_TOKEN
    return token.removeprefix(loaded.quirks.word_marker) or token


def start_generation(
    loaded: LoadedModel,
    prompt: str,
    max_new_tokens: int = DEFAULT_NEW_TOKENS,
    *,
    greedy: bool = True,
    seed: int | None = None,
    temperature: float = 1.0,
    top_k: int = DEFAULT_SAMPLING_TOP_K,
) -> Generation:
    """Check the request and tokenize the prompt now; the returned ``steps`` run the model when iterated.

    Args:
        max_new_tokens: most tokens to generate (fewer at EOS or at the model's maximum length).
        greedy: argmax decoding; otherwise sample from the ``top_k`` most likely tokens at ``temperature``,
            seeded by ``seed`` (0 when None) so that a run can be repeated.
    """
    check_generate(loaded)
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError(EMPTY_TEXT)
    if (
        isinstance(max_new_tokens, bool)
        or not isinstance(max_new_tokens, int)
        or not (1 <= max_new_tokens <= MAX_NEW_TOKENS)
    ):
        raise InputError(
            f"max_new_tokens must be a whole number from 1 to {MAX_NEW_TOKENS}; got {max_new_tokens!r}."
        )
    if not greedy and not (0 < temperature <= 10):
        raise InputError(f"temperature must be above 0 and at most 10; got {temperature!r}.")
    if not greedy and not (isinstance(top_k, int) and top_k >= 1):
        raise InputError(f"top_k must be a positive whole number; got {top_k!r}.")
    tokenizer = loaded.tokenizer
    with loaded.tokenizer_lock:  # see LoadedModel.tokenizer_lock
        enc = tokenizer(
            prompt, add_special_tokens=True, return_offsets_mapping=True, return_special_tokens_mask=True
        )
    ids = list(enc["input_ids"])
    if not ids:
        raise InputError("The tokenizer produced no tokens for this text.")
    if len(ids) >= loaded.max_length:
        raise InputError(
            f"The prompt is {len(ids):,} tokens long; {loaded.spec.label} reads at most "
            f"{loaded.max_length:,} tokens, so there is no room to generate. Shorten the prompt."
        )
    raw = tokenizer.convert_ids_to_tokens(ids)
    offsets = np.asarray(enc["offset_mapping"], dtype=np.int32).reshape(-1, 2)
    special = np.asarray(enc["special_tokens_mask"], dtype=bool)
    config = loaded.model.config
    generation = Generation(
        model_id=loaded.spec.id,
        revision=loaded.revision,
        prompt=prompt,
        prompt_ids=ids,
        prompt_tokens=list(raw),
        prompt_display=display_tokens(raw, offsets, special, prompt, loaded.quirks),
        layers=int(config.num_hidden_layers),
        heads=int(config.num_attention_heads),
        max_new_tokens=max_new_tokens,
        greedy=greedy,
        seed=None if greedy else (seed or 0),
    )
    generation.steps = _run(loaded, generation, temperature, top_k)
    return generation


def _eos_ids(loaded: LoadedModel) -> set[int]:
    eos = getattr(getattr(loaded.model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        eos = getattr(loaded.tokenizer, "eos_token_id", None)
    if eos is None:
        return set()
    return set(eos) if isinstance(eos, list | tuple) else {int(eos)}


def _run(
    loaded: LoadedModel, generation: Generation, temperature: float, top_k: int
) -> Iterator[GenerationStep]:
    tokenizer = loaded.tokenizer
    eos = _eos_ids(loaded)
    budget = min(generation.max_new_tokens, loaded.max_length - len(generation.prompt_ids))
    sampler = None
    if not generation.greedy:
        sampler = torch.Generator(device=loaded.device).manual_seed(int(generation.seed))
    step_input = torch.tensor([generation.prompt_ids], device=loaded.device)
    past = None
    generated: list[int] = []
    emitted = ""
    for index in range(budget):
        with loaded.lock, torch.inference_mode():
            logits, attention, past = _step(loaded, step_input, past, len(generation.prompt_ids) + index)
            if attention.shape[:2] != (generation.layers, generation.heads):
                raise RuntimeError(
                    f"attention of shape {attention.shape[:2]} for a model announced as "
                    f"{generation.layers} layers × {generation.heads} heads"
                )
            token_id = _choose(logits, sampler, temperature, top_k)
        generated.append(token_id)
        decoded = tokenizer.decode(generated)
        text = ""
        if not decoded.endswith(REPLACEMENT_CHAR):  # wait for the rest of a multi-byte character
            text, emitted = decoded[len(emitted) :] if decoded.startswith(emitted) else decoded, decoded
        token = tokenizer.convert_ids_to_tokens([token_id])[0]
        yield GenerationStep(index, token_id, token, _display(token, text, loaded), text, attention)
        if token_id in eos:
            generation.finish_reason = "eos"
            return
        step_input = torch.tensor([[token_id]], device=loaded.device)
    generation.finish_reason = "length" if budget == generation.max_new_tokens else "context"


def _step(
    loaded: LoadedModel, step_input: torch.Tensor, past, t: int
) -> tuple[torch.Tensor, np.ndarray, object]:
    """One forward on ``step_input`` after the cache ``past`` (``t`` tokens in all): the float32 logits of
    the next token ``[vocab]``, the last query's attention row ``[layers, heads, t]`` and the new cache."""
    model = loaded.model
    options: dict = dict(input_ids=step_input, past_key_values=past, use_cache=True)
    if _keeps_logits(type(model)):  # the prompt's other positions need no vocabulary projection
        options["logits_to_keep"] = 1
    if loaded.attention_mode == "captured":
        with recording() as recorder:
            out = model(**options)
        if recorder.unsupported:
            raise CaptureUnsupported(recorder.unsupported[0])
        rows = [_last_row(layer) for layer in recorder.layers]
    else:
        out = model(**options, output_attentions=True)
        rows = [a[0, :, -1, :] for a in out.attentions]
    return out.logits[0, -1].float(), _aligned(rows, t), out.past_key_values


@functools.cache
def _keeps_logits(model_class: type) -> bool:
    return "logits_to_keep" in inspect.signature(model_class.forward).parameters


def _last_row(layer: LayerQK) -> torch.Tensor:
    """The last query's float32 weights over the layer's keys ``[heads, k]``, recomputed for that row only."""
    q_len, k_len = int(layer.query.shape[2]), int(layer.key.shape[2])
    ((_, block),) = weights(layer, range(layer.heads), (q_len - 1, q_len), (0, k_len))  # one row: one chunk
    return block[:, 0]


def _aligned(rows: list[torch.Tensor], t: int) -> np.ndarray:
    """Per-layer rows ``[heads, k]`` as one float32 ``[layers, heads, t]``. A layer's keys are the newest
    ``k`` positions (a sliding-window cache keeps only those), so its row fills the last ``k`` columns and
    older positions, outside its window, get weight 0."""
    if not rows:
        raise RuntimeError("the model ran no attention layer that could be read")
    out = np.zeros((len(rows), rows[0].shape[0], t), dtype=np.float32)
    for layer, row in enumerate(rows):
        k = int(row.shape[-1])
        if k > t:
            raise RuntimeError(f"attention over {k} keys after {t} tokens")
        out[layer, :, t - k :] = row.float().cpu().numpy()
    return out


def _choose(logits: torch.Tensor, sampler: torch.Generator | None, temperature: float, top_k: int) -> int:
    if sampler is None:
        return int(torch.argmax(logits))
    values, ids = torch.topk(logits / temperature, min(top_k, logits.shape[-1]))
    probs = torch.softmax(values, dim=-1)
    return int(ids[torch.multinomial(probs, 1, generator=sampler)])
