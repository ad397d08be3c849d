"""Tokenizing many texts at once and grouping them into padded batches of similar length.

Encoding mirrors ``models.inference.preprocess`` (same ``[MASK]`` alias, special tokens, truncation count and
display tokens), so a text's corpus statistics equal those of the app's single-text analysis. Batches are
padded on the right, which leaves every real token's position (and so its attention) unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from visualizeai.analysis.head_stats import punctuation_mask
from visualizeai.models import predict
from visualizeai.models.loading import LoadedModel
from visualizeai.models.tokens import display_tokens

DEFAULT_BATCH_SIZE = 32
# Bound on the attention one batch holds (``worker.text_bytes``: dense float32 weights of every layer, or
# the recorded queries and keys under capture): a batch of long texts gets fewer texts.
DEFAULT_MAX_BATCH_BYTES = 256 * 1024**2


LONG_TEXTS = ("truncate", "window")


@dataclass(frozen=True)
class EncodedText:
    """One text (or one window of a long text) ready for the model, with what the statistics need.

    ``source`` is the text's position in the list given to ``encode_texts``; ``window`` numbers the windows
    of a text split by ``long_texts="window"`` (0 otherwise), ``token_start`` is the position of the
    window's first token among the text's tokens (special tokens aside) and ``char_start`` the character
    offset in the text where that token starts.
    """

    inputs: dict[str, list[int]]  # tokenizer outputs the model takes (input_ids, attention_mask, …)
    special: np.ndarray  # bool [n]
    punctuation: np.ndarray  # bool [n]
    dropped_tokens: int
    source: int = 0
    window: int = 0
    token_start: int = 0
    char_start: int = 0

    @property
    def n(self) -> int:
        return len(self.inputs["input_ids"])


def _one(tokenizer, texts: list[str], **options) -> dict:
    return tokenizer(
        texts,
        add_special_tokens=True,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        verbose=False,
        **options,
    )


def window_step(loaded: LoadedModel, overlap: int) -> int:
    """Tokens from one window's start to the next: the model's maximum less its special tokens and
    ``overlap``; ValueError when the overlap leaves no room."""
    content = loaded.max_length - loaded.tokenizer.num_special_tokens_to_add(pair=False)
    if not 0 <= overlap < content:
        raise ValueError(
            f"--window-overlap must be from 0 to {content - 1} for this model "
            f"({loaded.max_length} tokens, {loaded.max_length - content} of them special); got {overlap}"
        )
    return content - overlap


def encode_texts(
    loaded: LoadedModel, texts: list[str], long_texts: str = "truncate", overlap: int = 0
) -> list[EncodedText]:
    """Tokenize ``texts`` in one call; a text longer than the model's maximum is truncated from the end
    (``long_texts="truncate"``) or split into windows of the maximum that share ``overlap`` tokens
    (``"window"``). Returns the items in order of their text, a text's windows in order."""
    if long_texts not in LONG_TEXTS:
        raise ValueError(f"long_texts must be one of {', '.join(LONG_TEXTS)}; got {long_texts!r}")
    tokenizer = loaded.tokenizer
    step = window_step(loaded, overlap) if long_texts == "window" else 0
    aliases = [predict.substitute_mask_alias(text, tokenizer) for text in texts]
    model_texts = [alias.text for alias in aliases]
    full = _one(tokenizer, model_texts, truncation=False)
    long = [i for i, ids in enumerate(full["input_ids"]) if len(ids) > loaded.max_length]
    cut = None
    rows_of: dict[int, list[int]] = {}  # long text -> its rows in ``cut``
    if long:
        extra = {"stride": overlap, "return_overflowing_tokens": True} if step else {}
        cut = _one(
            tokenizer, [model_texts[i] for i in long], truncation=True, max_length=loaded.max_length, **extra
        )
        owners = cut["overflow_to_sample_mapping"] if step else range(len(long))
        for row, owner in enumerate(owners):
            rows_of.setdefault(long[owner], []).append(row)
    out = []
    for i, text in enumerate(texts):
        sources = [(cut, row) for row in rows_of[i]] if i in rows_of else [(full, i)]
        for window, (source, row) in enumerate(sources):
            inputs = {
                k: list(v[row])
                for k, v in source.items()
                if k not in ("offset_mapping", "special_tokens_mask", "overflow_to_sample_mapping")
            }
            ids = inputs["input_ids"]
            special = np.asarray(source["special_tokens_mask"][row], dtype=bool).reshape(len(ids))
            offsets = np.asarray(source["offset_mapping"][row], dtype=np.int32).reshape(len(ids), 2)
            offsets = aliases[i].to_original(offsets)
            offsets[special] = 0
            shown = display_tokens(
                tokenizer.convert_ids_to_tokens(ids), offsets, special, text, loaded.quirks
            )
            dropped = 0 if step else len(full["input_ids"][i]) - len(ids)
            content = np.flatnonzero(~special)
            char_start = int(offsets[content[0], 0]) if window and content.size else 0
            out.append(
                EncodedText(
                    inputs, special, punctuation_mask(shown), dropped, i, window, window * step, char_start
                )
            )
    return out


def _square(longest: int) -> int:
    return longest * longest


def length_batches(
    lengths, batch_size: int, budget: int | None = None, cost: Callable[[int], int] = _square
) -> list[np.ndarray]:
    """Group positions into batches of at most ``batch_size`` texts of similar length, longest first.

    Sorting by length keeps padding small; ``budget`` bounds ``len(batch) * cost(longest)``, what a batch
    padded to its longest text holds (by default ``longest²``, the attention cells per layer and head), so a
    batch of long texts holds fewer of them; a text over the budget alone still gets a batch of one.
    Returns int arrays of positions into ``lengths``; together they hold every position once.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < order.size:
        longest = max(int(lengths[order[start]]), 1)
        size = batch_size
        if budget is not None:
            size = max(1, min(size, budget // max(1, cost(longest))))
        batches.append(order[start : start + size])
        start += size
    return batches


def pad_batch(loaded: LoadedModel, items: list[EncodedText]) -> dict[str, torch.Tensor]:
    """Right-padded tensors ``[batch, longest]`` of every model input, on the model's device."""
    tokenizer = loaded.tokenizer
    pad_id = tokenizer.pad_token_id
    if pad_id is None:  # GPT-2 has no pad token; padded keys are masked out, so any id will do
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    fill = {
        "input_ids": pad_id,
        "attention_mask": 0,
        "token_type_ids": getattr(tokenizer, "pad_token_type_id", 0) or 0,
    }
    longest = max(item.n for item in items)
    keys = [k for k in items[0].inputs if k != "attention_mask"]
    arrays = {k: np.full((len(items), longest), fill.get(k, 0), dtype=np.int64) for k in keys}
    arrays["attention_mask"] = np.zeros((len(items), longest), dtype=np.int64)  # always, padding or not
    for row, item in enumerate(items):
        for key in keys:
            arrays[key][row, : item.n] = item.inputs[key]
        arrays["attention_mask"][row, : item.n] = 1
    return {k: torch.from_numpy(v).to(loaded.device) for k, v in arrays.items()}
