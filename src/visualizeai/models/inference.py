"""Attention analysis of one text, shaped like a transformers pipeline: preprocess → forward → postprocess."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np
import torch

from visualizeai.analysis.result import AnalysisResult, Prediction
from visualizeai.attention.capture import recording
from visualizeai.attention.store import AttentionStore, DenseStore
from visualizeai.errors import InputError, ModelUnavailable
from visualizeai.models import predict
from visualizeai.models.loading import LoadedModel
from visualizeai.models.tokens import display_tokens, readable_token, token_scheme

EMPTY_TEXT = "Text is empty: type or paste something to analyse."


@dataclass
class Encoded:
    """Tokenizer output for one text, truncated to the model's maximum."""

    inputs: dict[str, torch.Tensor]
    ids: list[int]
    offsets: np.ndarray  # int32 [n, 2]
    word_ids: np.ndarray  # int32 [n], -1 where no word
    special_mask: np.ndarray  # bool [n]
    dropped_tokens: int
    mask_positions: list[int] = field(default_factory=list)  # where the tokenizer's mask token is


@dataclass
class ModelOutput:
    """What one forward pass produced: the attention store, and LM-head logits where a prediction is due."""

    attention: AttentionStore  # [layers, heads, n, n]
    task: str | None = None  # "mask" | "next" | None
    positions: list[int] = field(default_factory=list)  # where ``logits`` were taken
    logits: torch.Tensor | None = None  # float32 [positions, vocab], on the CPU
    note: str | None = None  # why no prediction was made although the text asked for one


def preprocess(loaded: LoadedModel, text: str, max_tokens: int | None = None) -> Encoded:
    """Tokenize ``text`` with the model's special tokens, keeping at most the model's maximum (capped at
    ``max_tokens``); truncation is counted, never silent."""
    if not isinstance(text, str) or not text.strip():
        raise InputError(EMPTY_TEXT)
    tokenizer = loaded.tokenizer
    alias = predict.substitute_mask_alias(text, tokenizer)  # "[MASK]" → the model's own mask token
    model_text = alias.text
    with loaded.tokenizer_lock:  # the two calls set different truncation state on one shared tokenizer
        full = tokenizer(model_text, add_special_tokens=True, truncation=False, verbose=False)
        full_length = len(full["input_ids"])
        enc = tokenizer(
            model_text,
            add_special_tokens=True,
            truncation=True,
            max_length=token_limit(loaded, max_tokens),
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            return_tensors="pt",
        )
    ids = enc["input_ids"][0].tolist()
    if not ids:
        raise InputError("The tokenizer produced no tokens for this text.")
    offsets = alias.to_original(enc.pop("offset_mapping")[0].numpy().astype(np.int32))
    special = enc.pop("special_tokens_mask")[0].numpy().astype(bool)
    word_ids = np.array([-1 if w is None else w for w in enc.word_ids(0)], dtype=np.int32)
    word_ids[special] = -1
    offsets[special] = 0
    inputs = {k: v.to(loaded.device) for k, v in enc.items()}
    return Encoded(
        inputs,
        ids,
        offsets,
        word_ids,
        special,
        max(0, full_length - len(ids)),
        mask_positions=predict.mask_positions(ids, tokenizer),
    )


def token_limit(loaded: LoadedModel, max_tokens: int | None) -> int:
    """Most tokens an analysis under ``loaded`` keeps: its context window, capped at ``max_tokens``."""
    return loaded.max_length if max_tokens is None else max(1, min(loaded.max_length, max_tokens))


def check_attention_bytes(loaded: LoadedModel, n: int, max_bytes: int | None) -> None:
    """Refuse, before the model runs, an input whose attention would hold more than ``max_bytes``."""
    check = loaded.attention_check
    if check is None or max_bytes is None or (need := check.attention_bytes(n)) <= max_bytes:
        return
    fits = n
    while fits > 1 and check.attention_bytes(fits) > max_bytes:
        fits = max(1, fits * 3 // 4)
    what = "queries and keys" if check.mode == "captured" else "dense float32 attention (eager mode)"
    raise InputError(
        f"{loaded.spec.id} at {n:,} tokens needs {need:,} bytes for its {what}, over the limit of "
        f"{max_bytes:,} bytes (VISUALIZEAI_MAX_ATTENTION_BYTES); about {fits:,} tokens fit."
    )


def prediction_task(loaded: LoadedModel, encoded: Encoded) -> tuple[str | None, list[int], str | None]:
    """Which prediction this input calls for: ("mask", masked positions) for a masked LM with a trained head
    and a mask in the text, ("next", [last]) for a causal LM, else (None, []) with a note when a mask was
    asked for but the model cannot fill it."""
    if predict.predicts_next_token(loaded):
        return "next", [len(encoded.ids) - 1], None
    if encoded.mask_positions and loaded.kind != "causal-lm":
        reason = predict.fill_mask_refusal(loaded)
        if reason is None:
            return "mask", list(encoded.mask_positions), None
        return None, [], reason
    return None, [], None


def _accepts(model: torch.nn.Module, name: str) -> bool:
    """The model's forward takes the argument ``name`` (``logits_to_keep``: the vocabulary projection of the
    last rows only, as transformers' causal LMs do; ``use_cache``)."""
    return name in inspect.signature(model.forward).parameters


def run_attention(loaded: LoadedModel, module: torch.nn.Module, inputs: dict, **extra):
    """One forward pass of ``module`` (the model or its base) and its attention store: recorded queries and
    keys in captured mode, eager ``output_attentions`` in dense mode. Call with ``loaded.lock`` held."""
    if _accepts(module, "use_cache"):
        extra["use_cache"] = False  # a key/value cache would only duplicate the recorded keys
    if loaded.attention_mode == "captured":
        with recording() as recorder:
            out = module(**inputs, **extra)
        store = recorder.store()
        if store.nbytes >= store.dense_nbytes:  # a short input: its dense weights take less than q and k
            return out, DenseStore(store.dense(), store.captured)  # q and k kept for the vector views
        return out, store
    out = module(**inputs, output_attentions=True, **extra)
    if not out.attentions or out.attentions[0] is None:
        raise RuntimeError(f"{loaded.spec.id} returned no attention weights (eager attention is required)")
    # numpy, not torch.stack: numpy backs a large array with huge pages, so the one copy of every layer (75 MB
    # at 512 tokens) costs a few ms instead of tens of ms of page faults.
    return out, DenseStore(np.stack([layer[0].float().cpu().numpy() for layer in out.attentions]))


def forward(loaded: LoadedModel, encoded: Encoded) -> ModelOutput:
    """Every layer's and head's attention (``run_attention``), plus the LM-head logits at the positions a
    prediction is due, from one forward pass (the bare encoder when none is). Running out of memory is a
    ModelUnavailable naming the model and the length, never a crash."""
    try:
        return _forward(loaded, encoded)
    except (torch.OutOfMemoryError, MemoryError):
        raise ModelUnavailable(
            f"{loaded.spec.id} ran out of memory on {loaded.device} at {len(encoded.ids):,} tokens; "
            "try a shorter text or lower VISUALIZEAI_MAX_TOKENS."
        ) from None


def _forward(loaded: LoadedModel, encoded: Encoded) -> ModelOutput:
    task, positions, note = prediction_task(loaded, encoded)
    logits = None
    with loaded.lock, torch.inference_mode():
        if task is None:
            out, store = run_attention(loaded, loaded.encoder, encoded.inputs)
        else:
            extra = (
                {"logits_to_keep": 1} if task == "next" and _accepts(loaded.model, "logits_to_keep") else {}
            )
            out, store = run_attention(loaded, loaded.model, encoded.inputs, **extra)
            rows = [-1] if extra else positions  # with logits_to_keep=1 only the last row was computed
            logits = out.logits[0, rows].float().cpu()
    return ModelOutput(store, task, positions, logits, note)


def postprocess(
    loaded: LoadedModel,
    text: str,
    encoded: Encoded,
    output: ModelOutput,
    top_k: int = predict.DEFAULT_TOP_K,
    max_length: int | None = None,
) -> AnalysisResult:
    """The analysis result; ``max_length`` is the token limit the input was truncated to (the model's)."""
    raw = loaded.tokenizer.convert_ids_to_tokens(encoded.ids)
    scheme = token_scheme(loaded.tokenizer)
    predictions = None
    if output.task is not None and output.logits is not None:
        candidates = predict.top_candidates(output.logits, top_k, loaded.tokenizer)
        predictions = tuple(
            Prediction(position=p, kind=output.task, candidates=c)
            for p, c in zip(output.positions, candidates, strict=True)
        )
    return AnalysisResult(
        model_id=loaded.spec.id,
        revision=loaded.revision,
        model_kind=loaded.kind,
        text=text,
        tokens=list(raw),
        display_tokens=display_tokens(raw, encoded.offsets, encoded.special_mask, text, loaded.quirks),
        special_mask=encoded.special_mask,
        offsets=encoded.offsets,
        word_ids=encoded.word_ids,
        attention=output.attention,
        dropped_tokens=encoded.dropped_tokens,
        max_length=max_length or loaded.max_length,
        predictions=predictions,
        predictions_note=output.note,
        token_ids=np.asarray(encoded.ids, dtype=np.int64),
        readable_tokens=[readable_token(t, scheme) for t in raw],
        unknown_mask=np.asarray([i == loaded.tokenizer.unk_token_id for i in encoded.ids], dtype=bool),
    )


def analyze_text(
    loaded: LoadedModel,
    text: str,
    top_k: int = predict.DEFAULT_TOP_K,
    *,
    max_tokens: int | None = None,
    max_attention_bytes: int | None = None,
) -> AnalysisResult:
    """Run ``text`` through ``loaded`` and return every layer's and head's attention, with the LM head's
    top-k predictions at masked positions (masked LMs) or for the next token (causal LMs). At most
    ``max_tokens`` tokens are kept; an input whose attention would exceed ``max_attention_bytes`` is refused
    before the model runs."""
    encoded = preprocess(loaded, text, max_tokens)
    check_attention_bytes(loaded, len(encoded.ids), max_attention_bytes)
    output = forward(loaded, encoded)
    return postprocess(loaded, text, encoded, output, top_k, token_limit(loaded, max_tokens))
