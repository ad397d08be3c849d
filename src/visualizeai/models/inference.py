"""Attention analysis of one text, shaped like a transformers pipeline: preprocess → forward → postprocess."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from visualizeai.analysis.result import AnalysisResult
from visualizeai.errors import InputError
from visualizeai.models.loading import LoadedModel
from visualizeai.models.tokens import display_tokens

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


def preprocess(loaded: LoadedModel, text: str) -> Encoded:
    """Tokenize ``text`` with the model's special tokens; truncation is counted, never silent."""
    if not isinstance(text, str) or not text.strip():
        raise InputError(EMPTY_TEXT)
    tokenizer = loaded.tokenizer
    full_length = len(tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"])
    enc = tokenizer(
        text, add_special_tokens=True, truncation=True, max_length=loaded.max_length,
        return_offsets_mapping=True, return_special_tokens_mask=True, return_tensors="pt",
    )
    ids = enc["input_ids"][0].tolist()
    if not ids:
        raise InputError("The tokenizer produced no tokens for this text.")
    offsets = enc.pop("offset_mapping")[0].numpy().astype(np.int32)
    special = enc.pop("special_tokens_mask")[0].numpy().astype(bool)
    word_ids = np.array([-1 if w is None else w for w in enc.word_ids(0)], dtype=np.int32)
    word_ids[special] = -1
    offsets[special] = 0
    inputs = {k: v.to(loaded.device) for k, v in enc.items()}
    return Encoded(inputs, ids, offsets, word_ids, special, max(0, full_length - len(ids)))


def forward(loaded: LoadedModel, encoded: Encoded) -> np.ndarray:
    """Attention weights of every layer and head as float32 ``[layers, heads, n, n]``."""
    with loaded.lock, torch.inference_mode():
        out = loaded.encoder(**encoded.inputs, output_attentions=True)
    if not out.attentions or out.attentions[0] is None:
        raise RuntimeError(f"{loaded.spec.id} returned no attention weights (eager attention is required)")
    return torch.stack(out.attentions)[:, 0].float().cpu().numpy()


def postprocess(loaded: LoadedModel, text: str, encoded: Encoded, attentions: np.ndarray) -> AnalysisResult:
    raw = loaded.tokenizer.convert_ids_to_tokens(encoded.ids)
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
        attentions=attentions,
        dropped_tokens=encoded.dropped_tokens,
        max_length=loaded.max_length,
    )


def analyze_text(loaded: LoadedModel, text: str) -> AnalysisResult:
    """Run ``text`` through ``loaded`` and return every layer's and head's attention."""
    encoded = preprocess(loaded, text)
    return postprocess(loaded, text, encoded, forward(loaded, encoded))
