"""The analysis result: one text's tokens and every layer's and head's attention, keyed by position."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from visualizeai.analysis import _checks
from visualizeai.attention.store import AttentionStore, DenseStore

MODEL_KINDS = ("masked-lm", "causal-lm", "encoder")

MODEL_KIND_ERROR = "model_kind must be one of {kinds}; got {kind!r}"
TOKEN_COUNT_ERROR = "{name} has {count} entries but attentions cover n = {n} tokens"
OFFSETS_SHAPE_ERROR = "offsets must have shape [{n}, 2] (start, end per token); got shape {shape}"
OFFSETS_RANGE_ERROR = (
    "offsets must satisfy 0 <= start <= end <= len(text) = {length}; token {index} has {span}"
)
WORD_IDS_ERROR = "word_ids must be >= -1 (-1 = no word); token {index} has {value}"
TRUNCATION_ERROR = (
    "need dropped_tokens >= 0 and 1 <= n <= max_length; "
    "got dropped_tokens={dropped}, n={n}, max_length={max_length}"
)
PREDICTION_KINDS = ("mask", "next")
PREDICTION_ERROR = (
    "prediction {index}: need kind in {kinds} and 0 <= position < n = {n}; "
    "got kind={kind!r}, position={position}"
)


@dataclass(frozen=True)
class Candidate:
    """One guess of a language-model head: the decoded token, its vocabulary id and its probability;
    ``readable``: its vocabulary form decoded for people (byte-level pieces of a character as ``<0xE2>``
    escapes, where ``token`` shows "�"), empty when not known."""

    token: str
    token_id: int
    score: float
    readable: str = ""


@dataclass(frozen=True)
class Prediction:
    """Top-k guesses at one position: ``kind`` "mask" (the token at a masked position) or "next" (the token
    that follows ``position``, for causal LMs). Candidates are ordered by score, highest first."""

    position: int
    kind: str
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True, eq=False)
class AnalysisResult:
    """Tokens, masks and attention of one text under one model; everything is indexed by token position.

    Arrays are coerced to their documented dtypes on construction (no copy when they already match) and
    their shapes are checked against each other, so a consumer can rely on them.

    Attributes:
        model_id: catalog id, hub id or local path of the model.
        revision: commit hash or other revision of the weights, if known.
        model_kind: one of ``MODEL_KINDS``.
        text: the analysed text, untruncated.
        tokens: raw tokenizer strings (``##ing``, ``Ġthe``, ``▁the``), ``[n]``.
        display_tokens: the same tokens as a person should read them, ``[n]``.
        special_mask: bool ``[n]``, True for tokens the tokenizer added ([CLS], </s>, …).
        offsets: int32 ``[n, 2]``, character span ``text[start:end]`` per token; (0, 0) for special tokens.
        word_ids: int32 ``[n]``, index of the word a token belongs to; -1 for special tokens / no word.
        attention: the attention store (``visualizeai.attention``) every layer's and head's weights are read
            through; rows are queries, columns keys, rows sum to 1. A float32 ``[layers, heads, n, n]`` array
            is taken as a dense store.
        dropped_tokens: how many tokens truncation removed from the end (0 when the text fit).
        max_length: most tokens (specials included) the model accepts.
        predictions: top-k guesses of the model's LM head made in the same forward pass (one per masked
            position of a masked LM, or the next token of a causal LM); None when none were made.
        predictions_note: why no predictions were made although the text asked for them, for people.
        token_ids: int64 ``[n]`` vocabulary ids, or None when not known (saved files).
        readable_tokens: each token's vocabulary form decoded for people (``models.tokens.readable_token``):
            what the model saw, which can differ from the text it covers (``[UNK]``, stripped accents);
            None when not known.
        unknown_mask: bool ``[n]``, True for the tokenizer's unknown token; None when not known.
    """

    model_id: str
    revision: str | None
    model_kind: str
    text: str
    tokens: list[str]
    display_tokens: list[str]
    special_mask: np.ndarray  # bool [n]
    offsets: np.ndarray  # int32 [n, 2]
    word_ids: np.ndarray  # int32 [n]
    attention: AttentionStore  # [layers, heads, n, n], read in blocks, pooled pictures or means
    dropped_tokens: int
    max_length: int
    predictions: tuple[Prediction, ...] | None = None
    predictions_note: str | None = None
    token_ids: np.ndarray | None = None  # int64 [n]
    readable_tokens: list[str] | None = None
    unknown_mask: np.ndarray | None = None  # bool [n]

    def __post_init__(self) -> None:
        if self.model_kind not in MODEL_KINDS:
            raise ValueError(MODEL_KIND_ERROR.format(kinds=MODEL_KINDS, kind=self.model_kind))
        attention = self.attention
        if not isinstance(attention, AttentionStore):
            attention = DenseStore(_checks.attention(attention, "attentions"))
        n = attention.n
        for name in ("tokens", "display_tokens"):
            count = len(getattr(self, name))
            if count != n:
                raise ValueError(TOKEN_COUNT_ERROR.format(name=name, count=count, n=n))
        special_mask = _checks.bool_vector(self.special_mask, n, "special_mask")
        word_ids = _checks.int_vector(self.word_ids, n, "word_ids").astype(np.int32, copy=False)
        offsets = np.asarray(self.offsets)
        if offsets.shape != (n, 2) or not np.issubdtype(offsets.dtype, np.integer):
            raise ValueError(OFFSETS_SHAPE_ERROR.format(n=n, shape=offsets.shape))
        offsets = offsets.astype(np.int32, copy=False)
        bad = np.flatnonzero(
            (offsets[:, 0] < 0) | (offsets[:, 0] > offsets[:, 1]) | (offsets[:, 1] > len(self.text))
        )
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                OFFSETS_RANGE_ERROR.format(length=len(self.text), index=i, span=tuple(offsets[i].tolist()))
            )
        bad = np.flatnonzero(word_ids < -1)
        if bad.size:
            raise ValueError(WORD_IDS_ERROR.format(index=int(bad[0]), value=int(word_ids[bad[0]])))
        if self.dropped_tokens < 0 or not 1 <= n <= self.max_length:
            raise ValueError(
                TRUNCATION_ERROR.format(dropped=self.dropped_tokens, n=n, max_length=self.max_length)
            )
        for index, p in enumerate(self.predictions or ()):
            if p.kind not in PREDICTION_KINDS or not 0 <= p.position < n:
                raise ValueError(
                    PREDICTION_ERROR.format(
                        index=index, kinds=PREDICTION_KINDS, n=n, kind=p.kind, position=p.position
                    )
                )
        if self.readable_tokens is not None and len(self.readable_tokens) != n:
            raise ValueError(
                TOKEN_COUNT_ERROR.format(name="readable_tokens", count=len(self.readable_tokens), n=n)
            )
        if self.token_ids is not None:
            object.__setattr__(self, "token_ids", _checks.int_vector(self.token_ids, n, "token_ids"))
        if self.unknown_mask is not None:
            object.__setattr__(
                self, "unknown_mask", _checks.bool_vector(self.unknown_mask, n, "unknown_mask")
            )
        # frozen dataclass: store the coerced arrays through object.__setattr__
        object.__setattr__(self, "attention", attention)
        object.__setattr__(self, "special_mask", special_mask)
        object.__setattr__(self, "word_ids", word_ids)
        object.__setattr__(self, "offsets", offsets)

    @property
    def n(self) -> int:
        """Number of tokens (specials included)."""
        return self.attention.n

    @property
    def layers(self) -> int:
        return self.attention.layers

    @property
    def heads(self) -> int:
        return self.attention.heads

    @property
    def attentions(self) -> np.ndarray:
        """Every head as one float32 ``[layers, heads, n, n]`` array; ``DenseTooLarge`` (an InputError with
        the figures) when that would exceed ``attention.store.DENSE_MAX_BYTES``."""
        return self.attention.dense()
