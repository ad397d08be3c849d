"""Per-head summary statistics: one number per (layer, head) saying what kind of head it is.

All statistics are averages over query rows, so they read as "a typical token in this head ...". Padding
never counts: with a ``valid_mask`` the padded rows and columns are removed first and positions are
counted among the valid tokens only, so padding a text never changes its statistics. They are computed from
an attention store a chunk of rows at a time (``head_statistics_from_store``), so a long text never needs
a head's ``n × n`` at once; ``head_statistics`` is the same computation on an array.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import numpy as np

from visualizeai.analysis import _checks
from visualizeai.attention.store import AttentionStore, DenseStore

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

    The array form of ``head_statistics_from_store`` (same arithmetic, same results): the array is read
    through a ``DenseStore`` without copying it.

    Args:
        attn: float ``[layers, heads, n, n]``, rows are queries.
        special_mask, punctuation_mask, valid_mask: as for ``head_statistics_from_store``.
    """
    store = DenseStore(_checks.attention(attn))
    return head_statistics_from_store(store, special_mask, punctuation_mask, valid_mask)


def head_statistics_from_store(
    store: AttentionStore, special_mask, punctuation_mask, valid_mask=None
) -> dict[str, np.ndarray]:
    """All ``STAT_NAMES`` for every head of ``store``: ``{name: float32 [layers, heads]}``.

    Reads each layer's rows a bounded chunk at a time (``store.head_rows``) and keeps only per-head sums,
    so no head's ``n × n`` is ever held beyond one chunk. A "share" is the attention weight a query row puts
    on the keys in question, averaged over the valid query rows. ``previous_share`` averages over rows that
    have a previous token (all but the first), ``next_share`` over rows that have a next token; both are 0
    for a single token. Entropies use the natural log.

    Args:
        store: the attention, ``layers × heads`` matrices of ``n × n`` (rows are queries).
        special_mask: bool ``[n]``, True for special tokens.
        punctuation_mask: bool ``[n]``, True for punctuation tokens (see ``punctuation_mask()``).
        valid_mask: optional bool ``[n]``, False for padding. Padded rows and columns are dropped before
            anything is computed (models give padded keys no weight, so rows are not renormalised), and
            "first", "previous" and "next" token refer to valid tokens.
    """
    layers, heads, n = store.layers, store.heads, store.n
    special = _checks.bool_vector(special_mask, n, "special_mask")
    punctuation = _checks.bool_vector(punctuation_mask, n, "punctuation_mask")
    valid = np.ones(n, dtype=bool)
    if valid_mask is not None:
        valid = _checks.bool_vector(valid_mask, n, "valid_mask")
        if not valid.any():
            raise ValueError(NO_VALID_TOKEN_ERROR)
    keep = None if valid.all() else np.flatnonzero(valid)  # positions of the valid tokens, if some are not
    if keep is not None:
        special, punctuation = special[keep], punctuation[keep]
    m = int(valid.sum())
    rank = np.cumsum(valid) - 1  # a valid token's row and column once padding is dropped
    span = (0, n) if keep is None else (int(keep[0]), int(keep[-1]) + 1)  # rows worth reading
    special_keys = special.astype(np.float32)  # [m]
    punctuation_keys = punctuation.astype(np.float32)  # [m]
    sums = {name: np.zeros((layers, heads), dtype=np.float64) for name in STAT_NAMES}
    for layer in range(layers):
        for start, chunk in store.head_rows(layer, span):  # chunk: float32 [heads, c, n]
            positions = np.arange(start, start + chunk.shape[1])
            if keep is not None:
                chunk_valid = valid[positions]
                chunk = np.take(chunk[:, chunk_valid], keep, axis=2)  # [heads, c', m]
                positions = positions[chunk_valid]
            if positions.size:
                row_sums = _row_sums(chunk, rank[positions], special_keys, punctuation_keys)
                for name, value in row_sums.items():
                    sums[name][layer] += value
    counts = dict.fromkeys(STAT_NAMES, m)
    counts["previous_share"] = counts["next_share"] = m - 1  # rows that have a previous / a next token
    return {
        name: (sums[name] / counts[name] if counts[name] else sums[name]).astype(np.float32)
        for name in STAT_NAMES
    }


def _row_sums(
    a: np.ndarray, rows: np.ndarray, special_keys: np.ndarray, punctuation_keys: np.ndarray
) -> dict[str, np.ndarray]:
    """Each statistic summed over the query rows of one chunk: float64 ``[heads]`` per name.

    Args:
        a: float32 ``[heads, c, m]``, weights of ``c`` query rows over all ``m`` keys.
        rows: int ``[c]``, the position of each of those rows among the ``m`` tokens.
        special_keys, punctuation_keys: float32 ``[m]``, 1 for special (punctuation) keys, else 0.
    """
    m = a.shape[-1]
    at = np.arange(rows.size)
    tiny = np.finfo(np.float32).tiny  # log(tiny) is finite and 0 * log(tiny) = 0, so p = 0 adds nothing
    log = np.maximum(a, tiny)  # a new array (``a`` may be a view of the store's memory), then in place
    np.log(log, out=log)
    distance = np.abs(rows[:, None] - np.arange(m)[None, :]).astype(np.float32)  # [c, m]
    # per-row values in float32, summed over rows in float64: accurate at any n and any chunking
    out = {
        "entropy": -np.einsum("hij,hij->hi", a, log),
        "mean_distance": np.einsum("hij,ij->hi", a, distance),
        # matrix-vector products ([heads, c]); a matrix of two columns would miss the fast BLAS path
        "special_share": a @ special_keys,
        "punctuation_share": a @ punctuation_keys,
        "self_share": a[:, at, rows],
    }
    has_previous = rows >= 1
    out["previous_share"] = a[:, at[has_previous], rows[has_previous] - 1]
    has_next = rows < m - 1
    out["next_share"] = a[:, at[has_next], rows[has_next] + 1]
    out["sink_share"] = a[:, :, 0]
    return {name: out[name].sum(axis=1, dtype=np.float64) for name in STAT_NAMES}
