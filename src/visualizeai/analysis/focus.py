"""What one position attends to, per layer: the keys its query row weights most, averaged over heads.

Used for masked positions (what the model looks at while guessing the masked word) and for the last position
of a causal LM (what it looks at while predicting the next token).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from visualizeai.analysis import _checks
from visualizeai.attention.store import AttentionStore, DenseStore

POSITION_ERROR = "position {position} is out of range: there are positions 0..{last}"
K_ERROR = "k must be a positive integer; got {k!r}"


@dataclass(frozen=True)
class Focus:
    """The strongest keys of one query position in every layer.

    Attributes:
        position: the query position summarised.
        indices: int32 ``[layers, k]``, key positions ordered by weight (highest first, ties by position).
        weights: float32 ``[layers, k]``, the head-averaged attention the query gives each of those keys.
        row: float32 ``[layers, n]``, the full head-averaged attention row of the query in each layer.
    """

    position: int
    indices: np.ndarray  # int32 [layers, k]
    weights: np.ndarray  # float32 [layers, k]
    row: np.ndarray  # float32 [layers, n]


def row_focus(attentions, position: int, k: int = 3, ignore=None) -> Focus:
    """Per layer, the ``k`` keys that query ``position`` attends to most, averaged over heads.

    The array form of ``row_focus_from_store`` (same arithmetic, same results).

    Args:
        attentions: ``[layers, heads, n, n]``, rows are queries.
        position, k, ignore: as for ``row_focus_from_store``.
    """
    return row_focus_from_store(DenseStore(attentions), position, k, ignore)


def row_focus_from_store(store: AttentionStore, position: int, k: int = 3, ignore=None) -> Focus:
    """Per layer, the ``k`` keys that query ``position`` attends to most, averaged over heads; reads one
    query row per layer from ``store`` (``head_rows``), never a whole matrix.

    Args:
        store: the attention, ``layers × heads`` matrices of ``n × n`` (rows are queries).
        position: the query position (a masked token, or the last token of a causal LM).
        k: how many keys per layer; fewer when fewer keys are eligible.
        ignore: optional bool ``[n]`` of keys to leave out of the ranking (special tokens, say). The weights
            are not renormalised: they stay the share of attention the query really gives.
    """
    n = store.n
    if not isinstance(position, int | np.integer) or not 0 <= position < n:
        raise ValueError(POSITION_ERROR.format(position=position, last=n - 1))
    if not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 1:
        raise ValueError(K_ERROR.format(k=k))
    eligible = np.arange(n)
    if ignore is not None:
        eligible = np.flatnonzero(~_checks.bool_vector(ignore, n, "ignore"))
    p = int(position)
    row = np.empty((store.layers, n), dtype=np.float32)  # [layers, n]
    for layer in range(store.layers):
        for _, chunk in store.head_rows(layer, (p, p + 1)):  # [heads, 1, n], one chunk
            row[layer] = chunk[:, 0].mean(axis=0, dtype=np.float32)
    k = min(int(k), eligible.size)
    # stable sort on the negated weights: equal weights keep position order
    order = np.argsort(-row[:, eligible], axis=1, kind="stable")[:, :k]  # [layers, k]
    indices = eligible[order].astype(np.int32)
    weights = np.take_along_axis(row, indices.astype(np.intp), axis=1).astype(np.float32)
    return Focus(p, indices, weights, row)
