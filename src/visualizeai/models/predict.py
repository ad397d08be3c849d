"""Predictions of a model's language-model head: masked tokens (fill-mask) and the next token (causal LMs).

The universal alias ``[MASK]`` stands for the tokenizer's own mask token (``<mask>`` for RoBERTa), so one text
works with every masked LM; character offsets are mapped back to the text as typed. A model refuses fill-mask
when its loading info shows that transformers had to initialise weights (an encoder checkpoint loaded as a
masked LM gets a random head, whose guesses must never be shown).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from visualizeai.analysis.result import Candidate
from visualizeai.errors import InputError, TaskUnsupported
from visualizeai.models.loading import LoadedModel
from visualizeai.models.tokens import readable_token, token_scheme

MASK_ALIAS = "[MASK]"
DEFAULT_TOP_K = 10
MAX_TOP_K = 100


@dataclass(frozen=True)
class AliasMap:
    """``text`` with every ``[MASK]`` alias replaced by the tokenizer's mask token, and the way back.

    Attributes:
        original: the text as typed.
        text: the text the tokenizer sees.
        spans: per replacement (start in ``original``, start in ``text``, length of the mask token), in order.
    """

    original: str
    text: str
    spans: tuple[tuple[int, int, int], ...] = ()

    def to_original(self, offsets: np.ndarray) -> np.ndarray:
        """Character offsets ``[n, 2]`` into ``text`` as offsets into ``original``; a token that covers (part
        of) a replaced mask token covers the whole ``[MASK]`` alias."""
        if not self.spans:
            return offsets
        out = np.empty_like(offsets)
        for i, (start, end) in enumerate(offsets.tolist()):
            out[i, 0] = self._map(start, is_end=False)
            out[i, 1] = self._map(end, is_end=True)
        return out

    def _map(self, offset: int, is_end: bool) -> int:
        delta = 0
        for original_start, start, length in self.spans:
            stop = start + length
            if offset < start or (is_end and offset == start):
                break
            if offset < stop or (is_end and offset == stop):
                return original_start + (len(MASK_ALIAS) if is_end else 0)
            delta = original_start + len(MASK_ALIAS) - stop
        return offset + delta


def substitute_mask_alias(text: str, tokenizer) -> AliasMap:
    """Replace ``[MASK]`` with the tokenizer's mask token where that token is spelled differently."""
    mask = getattr(tokenizer, "mask_token", None)
    if not mask or mask == MASK_ALIAS or MASK_ALIAS not in text:
        return AliasMap(text, text)
    pieces = text.split(MASK_ALIAS)
    spans = []
    original_at = new_at = 0
    for piece in pieces[:-1]:
        original_at += len(piece)
        new_at += len(piece)
        spans.append((original_at, new_at, len(mask)))
        original_at += len(MASK_ALIAS)
        new_at += len(mask)
    return AliasMap(text, mask.join(pieces), tuple(spans))


def mask_positions(ids: list[int], tokenizer) -> list[int]:
    """Positions of the tokenizer's mask token in ``ids`` (empty when it has none)."""
    mask_id = getattr(tokenizer, "mask_token_id", None)
    if mask_id is None:
        return []
    return [i for i, token_id in enumerate(ids) if token_id == mask_id]


def has_lm_head(loaded: LoadedModel) -> bool:
    """The loaded model has a language-model head at all (an architecture without a masked-LM class is
    loaded as its bare encoder)."""
    return loaded.model is not loaded.encoder


def fill_mask_refusal(loaded: LoadedModel) -> str | None:
    """Why ``loaded`` cannot fill masks, in words for a person; None when it can."""
    name = loaded.spec.label
    if loaded.kind == "causal-lm":
        return (
            f"{name} is a causal language model: it predicts the next token, not masked ones. "
            "Its next-token predictions are shown instead; use generation to continue the text."
        )
    if getattr(loaded.tokenizer, "mask_token", None) is None:
        return f"{name} cannot fill masks: its tokenizer has no mask token."
    if not has_lm_head(loaded):
        return f"{name} cannot fill masks: it is an encoder without a masked-language-model head."
    if not loaded.lm_head_trained:
        missing = sorted(loaded.missing_keys)
        shown = ", ".join(missing[:3]) + (", …" if len(missing) > 3 else "")
        return (
            f"{name} cannot fill masks: its checkpoint has no trained masked-language-model head "
            f"({len(loaded.missing_keys)} weights missing: {shown}), so its guesses would be random. "
            "Use a masked language model such as bert-base-uncased or roberta-base."
        )
    return None


def check_fill_mask(loaded: LoadedModel) -> None:
    """Raise TaskUnsupported when ``loaded`` cannot fill masks."""
    reason = fill_mask_refusal(loaded)
    if reason is not None:
        raise TaskUnsupported(reason)


def predicts_next_token(loaded: LoadedModel) -> bool:
    """A causal LM with its LM head loaded (every weight from the checkpoint)."""
    return loaded.kind == "causal-lm" and has_lm_head(loaded) and loaded.lm_head_trained


def check_top_k(top_k: int) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise InputError(f"top_k must be a whole number from 1 to {MAX_TOP_K}; got {top_k!r}.")
    return top_k


def top_candidates(logits: torch.Tensor, top_k: int, tokenizer) -> list[tuple[Candidate, ...]]:
    """Top-k of the softmax over the vocabulary for each row of ``logits`` ``[positions, vocab]``.

    Tokens are decoded one id at a time, as ``pipeline("fill-mask")`` does for its ``token_str``. Ids past
    the tokenizer's vocabulary (models pad their embedding, Qwen2.5's 151,936 rows for 151,665 tokens) have
    no vocabulary form: their token and readable form are empty, their id says which they are.
    """
    scheme = token_scheme(tokenizer)

    def readable(token_id: int) -> str:
        raw = tokenizer.convert_ids_to_tokens(token_id)
        return "" if raw is None else readable_token(raw, scheme)

    probs = logits.float().softmax(dim=-1)
    values, ids = probs.topk(min(top_k, probs.shape[-1]), dim=-1)
    return [
        tuple(
            Candidate(
                token=tokenizer.decode([token_id]),
                token_id=token_id,
                score=score,
                readable=readable(token_id),
            )
            for score, token_id in zip(row_values, row_ids, strict=True)
        )
        for row_values, row_ids in zip(values.tolist(), ids.tolist(), strict=True)
    ]
