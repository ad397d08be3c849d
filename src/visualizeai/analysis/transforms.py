"""Reshaping attention for display: select, average, hide tokens, merge subwords, downsample, encode."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from visualizeai.analysis import _checks

LAYER_RANGE_ERROR = "layer {index} is out of range: there are layers 0..{last}"
HEAD_RANGE_ERROR = "head {index} is out of range: there are heads 0..{last}"
SIZE_ERROR = "size must be a positive integer; got {size!r}"
GROUPS_ERROR = "groups must be disjoint lists of token positions in 0..{last}; {problem}"

MERGE_RULE = (
    "Subword tokens are merged into words by summing the attention a query gives to the pieces of a word "
    "(how much it attends to the word) and averaging over the pieces of a query word (what the word as a "
    "whole attends to). Rows still sum to 1. Special tokens stay on their own."
)


def select(attn, layer: int | None = None, head: int | None = None) -> np.ndarray:
    """Pick a layer and/or a head out of ``[layers, heads, n, n]``, like indexing but with range checks.

    Returns ``[heads, n, n]`` for a layer, ``[layers, n, n]`` for a head, ``[n, n]`` for both, and the
    input itself for neither. Negative indices are refused rather than counted from the end.
    """
    attn = _checks.attention(attn)
    layers, heads = attn.shape[:2]
    if layer is not None and not 0 <= layer < layers:
        raise ValueError(LAYER_RANGE_ERROR.format(index=layer, last=layers - 1))
    if head is not None and not 0 <= head < heads:
        raise ValueError(HEAD_RANGE_ERROR.format(index=head, last=heads - 1))
    if layer is not None:
        attn = attn[layer]  # [heads, n, n]
        return attn if head is None else attn[head]
    return attn if head is None else attn[:, head]


def mean_over_heads(attn) -> np.ndarray:
    """``[layers, heads, n, n] -> [layers, n, n]``: the average head of each layer."""
    return _checks.attention(attn).mean(axis=1, dtype=np.float32)


def mean_over_layers(attn) -> np.ndarray:
    """``[layers, heads, n, n] -> [heads, n, n]``: each head index averaged over the layers."""
    return _checks.attention(attn).mean(axis=0, dtype=np.float32)


def renormalize_rows(matrix) -> np.ndarray:
    """``[..., n, m] -> [..., n, m]`` with every row divided by its sum; all-zero rows stay zero."""
    matrix = np.asarray(matrix, dtype=np.float32)
    sums = matrix.sum(axis=-1, keepdims=True)
    return np.divide(matrix, sums, out=np.zeros_like(matrix), where=sums > 0)


def hide_tokens(matrix, hidden_mask) -> tuple[np.ndarray, np.ndarray]:
    """Remove the rows and columns of hidden tokens and renormalise what is left.

    Each remaining row is divided by its remaining sum, so it again sums to 1 and reads as "attention among
    the shown tokens". A row whose whole weight was on hidden tokens has nothing left to renormalise and
    stays all zero.

    Args:
        matrix: float ``[..., n, n]``.
        hidden_mask: bool ``[n]``, True for tokens to hide (e.g. the special-token mask).

    Returns:
        ``(matrix' [..., m, m], kept_index int64 [m])``, where ``kept_index`` maps new positions to old.
    """
    matrix = _checks.square(matrix)
    hidden = _checks.bool_vector(hidden_mask, matrix.shape[-1], "hidden_mask")
    kept = np.flatnonzero(~hidden)
    return renormalize_rows(matrix[..., kept[:, None], kept]), kept


def word_groups(word_ids) -> list[list[int]]:
    """Token positions grouped into words: runs of equal word id; a token with id -1 is a group of its own.

    Groups are runs of consecutive tokens (not all tokens with the same id), so the word ids of a sentence
    pair, which start again at 0 for the second sentence, still give one group per word.
    """
    ids = np.asarray(word_ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"word_ids must be a 1-d integer array; got shape {ids.shape}, dtype {ids.dtype}")
    groups: list[list[int]] = []
    previous = -1
    for position, word in enumerate(ids.tolist()):
        if word != -1 and word == previous:
            groups[-1].append(position)
        else:
            groups.append([position])
        previous = word
    return groups


def pool_groups(matrix, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """``[..., n, n] -> [..., g, g]`` by ``MERGE_RULE``: sum over the keys of a group, mean over its queries.

    Groups must be disjoint; positions in no group are dropped (their weight is lost, so rows then sum to
    less than 1), and an empty group gives a row and a column of zeros, which keeps two poolings with the
    same group count comparable cell by cell.
    """
    matrix = _checks.square(matrix)
    n = matrix.shape[-1]
    sizes = np.array([len(group) for group in groups], dtype=np.int64)
    order = np.concatenate([np.asarray(group, dtype=np.int64) for group in groups] + [np.zeros(0, np.int64)])
    if order.size and (order.min() < 0 or order.max() >= n):
        raise ValueError(GROUPS_ERROR.format(last=n - 1, problem="a position is out of range"))
    if np.unique(order).size != order.size:
        raise ValueError(GROUPS_ERROR.format(last=n - 1, problem="a position appears twice"))
    out = np.zeros(matrix.shape[:-2] + (len(groups), len(groups)), dtype=np.float32)
    filled = np.flatnonzero(sizes)
    if filled.size == 0:
        return out
    if not np.array_equal(order, np.arange(n)):
        matrix = matrix[..., order[:, None], order]  # group members next to each other
    starts = np.concatenate([[0], np.cumsum(sizes[filled])[:-1]])
    pooled = np.add.reduceat(matrix, starts, axis=-1)  # [..., n', g'] summed over key pieces
    counts = sizes[filled].astype(np.float32)[:, None]
    pooled = np.add.reduceat(pooled, starts, axis=-2) / counts  # mean over query pieces
    out[..., filled[:, None], filled] = pooled
    return out


def merge_subwords(matrix, word_ids) -> tuple[np.ndarray, list[list[int]]]:
    """Merge subword tokens into words by the rule in ``MERGE_RULE``.

    Args:
        matrix: float ``[..., n, n]``, rows summing to 1.
        word_ids: int ``[n]``, -1 for special tokens / tokens without a word.

    Returns:
        ``(matrix' [..., w, w], groups)``: rows of ``matrix'`` still sum to 1, and ``groups[k]`` lists the
        token positions that make up word ``k`` (see ``word_groups``).
    """
    matrix = _checks.square(matrix)
    ids = _checks.int_vector(word_ids, matrix.shape[-1], "word_ids")
    groups = word_groups(ids)
    return pool_groups(matrix, groups), groups


def _block_bounds(n: int, s: int) -> np.ndarray:
    """``[s + 1]`` boundaries splitting ``0..n`` into ``s`` non-empty blocks of near-equal size.

    Equal to ``np.linspace(0, n, s + 1)`` rounded down, computed in integers so that no boundary is off
    by one from floating-point error.
    """
    return np.arange(s + 1, dtype=np.int64) * n // s


def downsample(matrix, size: int) -> np.ndarray:
    """``[..., n, n] -> [..., s, s]`` with ``s = min(size, n)``, each cell the mean of its block.

    When ``s`` does not divide ``n`` the blocks differ in size by at most one row/column; each cell is
    still the plain mean of the cells in its block, so a constant matrix stays constant.
    """
    matrix = _checks.square(matrix)
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
        raise ValueError(SIZE_ERROR.format(size=size))
    n = matrix.shape[-1]
    s = min(int(size), n)
    if s == n:
        return matrix
    bounds = _block_bounds(n, s)
    counts = np.diff(bounds).astype(np.float32)
    sums = np.add.reduceat(np.add.reduceat(matrix, bounds[:-1], axis=-1), bounds[:-1], axis=-2)
    return sums / (counts[:, None] * counts[None, :])


def quantize_thumbnails(attn, size: int) -> np.ndarray:
    """``[layers, heads, n, n] -> uint8 [layers, heads, s, s]``: downsampled, each divided by its own max.

    Cells are ``round(255 * v / max)``; an all-zero thumbnail stays zero. This is the wire format of the
    thumbnails endpoint (docs/wire-format.md).
    """
    thumbs = downsample(_checks.attention(attn), size)
    peak = thumbs.max(axis=(-2, -1), keepdims=True)
    # 255 · v first, then ÷ max: the order the documented formula states, so a cell on a .5 boundary
    # rounds the same way wherever the formula is recomputed
    scaled = np.divide(255.0 * thumbs, peak, out=np.zeros_like(thumbs), where=peak > 0)
    return np.rint(np.clip(scaled, 0.0, 255.0)).astype(np.uint8)


def to_float16_bytes(matrix) -> bytes:
    """Little-endian IEEE float16 bytes of ``matrix`` in C order, no header (the attention wire format)."""
    array = np.asarray(matrix)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(_checks.FLOAT_DTYPE_ERROR.format(name="matrix", dtype=array.dtype))
    return np.ascontiguousarray(array, dtype="<f2").tobytes()
