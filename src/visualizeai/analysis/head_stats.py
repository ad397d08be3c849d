"""Per-head summary statistics: one number per (layer, head) saying what kind of head it is.

All statistics are averages over query rows, so they read as "a typical token in this head ...". Padding
never counts: with a ``valid_mask`` the padded rows and columns are removed first and positions are
counted among the valid tokens only, so padding a text never changes its statistics.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import numpy as np

from visualizeai.analysis import _checks

STAT_NAMES = (
    "entropy",
    "mean_distance",
    "special_share",
    "punctuation_share",
    "self_share",
    "previous_share",
    "next_share",
    "sink_share",
)

STAT_DESCRIPTIONS = {
    "entropy": "How spread out attention is: mean of -Σ p·ln p (0 = all on one token, ln n = uniform).",
    "mean_distance": "How far a token looks: mean over tokens of Σ p·|i − j|, in token positions.",
    "special_share": "Share of attention on special tokens such as [CLS], [SEP], <s> or </s>.",
    "punctuation_share": "Share of attention on punctuation tokens.",
    "self_share": "Share of attention a token gives to itself.",
    "previous_share": "Share of attention on the token just before (tokens that have one).",
    "next_share": "Share of attention on the token just after (tokens that have one).",
    "sink_share": "Share of attention on the first token, a common 'attention sink'.",
}

NO_VALID_TOKEN_ERROR = "valid_mask marks no token as valid; statistics need at least one"


def punctuation_mask(display_tokens: Sequence[str]) -> np.ndarray:
    """bool ``[n]``: True for tokens made only of punctuation (Unicode categories P*), spaces aside."""
    return np.array(
        [
            bool(t.strip()) and all(unicodedata.category(c).startswith("P") for c in t.strip())
            for t in display_tokens
        ],
        dtype=bool,
    ).reshape(len(display_tokens))


def head_statistics(attn, special_mask, punctuation_mask, valid_mask=None) -> dict[str, np.ndarray]:
    """All ``STAT_NAMES`` for every head: ``[layers, heads, n, n] -> {name: float32 [layers, heads]}``.

    A "share" is the attention weight a query row puts on the keys in question, averaged over the valid
    query rows. ``previous_share`` averages over rows that have a previous token (all but the first),
    ``next_share`` over rows that have a next token; both are 0 for a single token. Entropies use the
    natural log.

    Args:
        attn: float ``[layers, heads, n, n]``, rows are queries.
        special_mask: bool ``[n]``, True for special tokens.
        punctuation_mask: bool ``[n]``, True for punctuation tokens (see ``punctuation_mask()``).
        valid_mask: optional bool ``[n]``, False for padding. Padded rows and columns are dropped before
            anything is computed (models give padded keys no weight, so rows are not renormalised), and
            "first", "previous" and "next" token refer to valid tokens.
    """
    attn = _checks.attention(attn)
    layers, heads, n, _ = attn.shape
    special = _checks.bool_vector(special_mask, n, "special_mask")
    punctuation = _checks.bool_vector(punctuation_mask, n, "punctuation_mask")
    keep = None  # positions of the valid tokens, when some are padding
    if valid_mask is not None:
        valid = _checks.bool_vector(valid_mask, n, "valid_mask")
        if not valid.any():
            raise ValueError(NO_VALID_TOKEN_ERROR)
        if not valid.all():
            keep = np.flatnonzero(valid)
            special, punctuation = special[keep], punctuation[keep]
    m = n if keep is None else keep.size
    positions = np.arange(m, dtype=np.float32)
    distance = np.abs(positions[:, None] - positions[None, :])  # [m, m]
    special_keys = special.astype(np.float32)  # [m]
    punctuation_keys = punctuation.astype(np.float32)  # [m]
    tiny = np.finfo(np.float32).tiny  # log(tiny) is finite and 0 * log(tiny) = 0, so p = 0 adds nothing

    stats = {name: np.zeros((layers, heads), dtype=np.float32) for name in STAT_NAMES}
    for layer in range(layers):  # one layer at a time keeps temporaries at [heads, m, m]
        a = attn[layer]  # [heads, n, n]
        if keep is not None:
            a = np.take(np.take(a, keep, axis=1), keep, axis=2)  # [heads, m, m]
        # per-row sums first, then the mean over rows: accurate in float32 even at m = 512
        stats["entropy"][layer] = -np.einsum("hij,hij->hi", a, np.log(np.maximum(a, tiny))).mean(axis=1)
        stats["mean_distance"][layer] = np.einsum("hij,ij->hi", a, distance).mean(axis=1)
        # matrix-vector products ([heads, m]); a matrix of two columns would miss the fast BLAS path
        stats["special_share"][layer] = (a @ special_keys).mean(axis=1)
        stats["punctuation_share"][layer] = (a @ punctuation_keys).mean(axis=1)
        stats["self_share"][layer] = np.diagonal(a, axis1=1, axis2=2).mean(axis=1)
        if m > 1:
            stats["previous_share"][layer] = np.diagonal(a, offset=-1, axis1=1, axis2=2).mean(axis=1)
            stats["next_share"][layer] = np.diagonal(a, offset=1, axis1=1, axis2=2).mean(axis=1)
        stats["sink_share"][layer] = a[:, :, 0].mean(axis=1)
    return stats
