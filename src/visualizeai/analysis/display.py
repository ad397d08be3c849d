"""The matrix a view displays: one layer or head, optionally averaged, with special tokens hidden and subword
pieces merged into words. Each displayed row/column remembers which token positions it stands for."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from visualizeai.analysis import _checks
from visualizeai.analysis.transforms import (
    hide_tokens,
    mean_over_heads,
    mean_over_layers,
    pool_groups,
    select,
    word_groups,
)

AGGREGATES = ("none", "mean_heads", "mean_layers", "mean_all")

AGG_ERROR = "agg must be one of {choices}; got {agg!r}"
AVERAGED_ERROR = "{name} cannot be chosen with agg={agg}: the {name}s are averaged"
NOTHING_LEFT_ERROR = "nothing left to show: every one of the {n} tokens is special"


@dataclass(frozen=True)
class DisplayMatrix:
    """What a view draws.

    Attributes:
        matrix: float32 ``[..., m, m]``; rows are queries, columns keys.
        groups: ``m`` lists of token positions of the analysed text, one per displayed row/column: a single
            position, or the pieces of a merged word.
        renormalized: True when hidden tokens were removed and rows rescaled to sum to 1 again.
    """

    matrix: np.ndarray  # float32 [..., m, m]
    groups: list[list[int]]
    renormalized: bool


def aggregate_selection(
    agg: str, layer: int | None, head: int | None, layers: int, heads: int
) -> tuple[list[tuple[int | None, int | None]], tuple[int, ...]]:
    """Which matrices ``agg`` with ``layer``/``head`` stands for, without reading any.

    Returns ``(picks, lead)``: ``picks`` are ``(layer, head)`` pairs in the attention store's convention
    (None: averaged over that axis, e.g. ``(2, None)`` is the mean of layer 2's heads), and the result is
    their matrices stacked into ``lead + (n, n)`` (``lead == ()``: the one matrix of the one pick). See
    ``aggregate`` for what each ``agg`` means. Indices are not range-checked here: whoever reads the picks
    does that. ValueError for an unknown ``agg`` or a pick on an averaged axis.
    """
    if agg not in AGGREGATES:
        raise ValueError(AGG_ERROR.format(choices=", ".join(AGGREGATES), agg=agg))
    if agg in ("mean_heads", "mean_all") and head is not None:
        raise ValueError(AVERAGED_ERROR.format(name="head", agg=agg))
    if agg in ("mean_layers", "mean_all") and layer is not None:
        raise ValueError(AVERAGED_ERROR.format(name="layer", agg=agg))
    if agg == "mean_all":
        return [(None, None)], ()
    if agg == "mean_heads":
        return ([(layer, None)], ()) if layer is not None else ([(i, None) for i in range(layers)], (layers,))
    if agg == "mean_layers":
        return ([(None, head)], ()) if head is not None else ([(None, h) for h in range(heads)], (heads,))
    # agg == "none": the axes left unpicked stay
    layer_axis = [layer] if layer is not None else list(range(layers))
    head_axis = [head] if head is not None else list(range(heads))
    lead = (() if layer is not None else (layers,)) + (() if head is not None else (heads,))
    return [(i, h) for i in layer_axis for h in head_axis], lead


def _pick(attn: np.ndarray, layer: int | None, head: int | None) -> np.ndarray:
    """One matrix ``[n, n]`` of ``[layers, heads, n, n]`` for a pick of ``aggregate_selection``."""
    if layer is not None and head is not None:
        return select(attn, layer, head)
    if layer is not None:
        return mean_over_heads(select(attn, layer)[None])[0]
    if head is not None:
        return mean_over_layers(select(attn, head=head)[:, None])[0]
    return mean_over_heads(attn).mean(axis=0, dtype=np.float32)


def aggregate(attentions, layer: int | None, head: int | None, agg: str = "none") -> np.ndarray:
    """Select and average ``[layers, heads, n, n]``.

    ``agg`` is one of ``AGGREGATES``. The averaged axes disappear; ``layer``/``head`` pick from the axes that
    remain (an axis left unpicked stays in the result), and picking an averaged axis is an error. Returns, for
    ``agg="none"``, what ``transforms.select`` returns; for ``"mean_heads"`` ``[layers, n, n]`` or ``[n, n]``
    with a layer; for ``"mean_layers"`` ``[heads, n, n]`` or ``[n, n]`` with a head; for ``"mean_all"``
    ``[n, n]``. The same choice read from an attention store: ``aggregate_selection``.
    """
    attn = _checks.attention(attentions)
    picks, lead = aggregate_selection(agg, layer, head, attn.shape[0], attn.shape[1])
    if agg == "none":
        return select(attn, layer, head)  # a view, no copy
    if not lead:
        return _pick(attn, *picks[0])
    n = attn.shape[-1]
    return np.stack([_pick(attn, i, h) for i, h in picks]).reshape(lead + (n, n))


def display_attention(
    attentions,
    special_mask,
    word_ids,
    *,
    layer: int | None = None,
    head: int | None = None,
    agg: str = "none",
    hide_special: bool = False,
    merge_words: bool = False,
) -> DisplayMatrix:
    """The matrix a view shows: ``aggregate``, then ``display_matrix`` (hide special tokens, merge subwords).

    Args:
        attentions: float ``[layers, heads, n, n]``.
        special_mask: bool ``[n]``, True for tokens the tokenizer added.
        word_ids: int ``[n]``, -1 for tokens outside any word.

    Returns:
        ``DisplayMatrix`` with ``matrix`` shaped like ``aggregate``'s result but with ``m <= n`` tokens.
    """
    matrix = aggregate(attentions, layer, head, agg)
    return display_matrix(matrix, special_mask, word_ids, hide_special=hide_special, merge_words=merge_words)


def display_matrix(
    matrix, special_mask, word_ids, *, hide_special: bool = False, merge_words: bool = False
) -> DisplayMatrix:
    """An already selected matrix as a view shows it: special tokens hidden, subword pieces merged.

    Hiding (``transforms.hide_tokens``) removes the special tokens' rows and columns and renormalises each
    row over the tokens left. Merging follows ``transforms.MERGE_RULE`` (sum over key pieces, mean over query
    pieces); words are found on the full token sequence (``transforms.word_groups``), so hiding a token
    between two words never glues them together.

    Args:
        matrix: float ``[..., n, n]`` (a head, a mean, or a stack of them).
        special_mask: bool ``[n]``, True for tokens the tokenizer added.
        word_ids: int ``[n]``, -1 for tokens outside any word.

    Returns:
        ``DisplayMatrix`` with ``matrix`` float32 ``[..., m, m]``, ``m <= n``.
    """
    matrix = _checks.square(matrix)
    n = matrix.shape[-1]
    special = _checks.bool_vector(special_mask, n, "special_mask")
    ids = _checks.int_vector(word_ids, n, "word_ids")
    kept = np.arange(n)
    if hide_special:
        if special.all():
            raise ValueError(NOTHING_LEFT_ERROR.format(n=n))
        matrix, kept = hide_tokens(matrix, special)
    groups = [[int(i)] for i in kept]
    if merge_words:
        new_position = np.full(n, -1, dtype=np.int64)
        new_position[kept] = np.arange(kept.size)
        groups = []
        for word in word_groups(ids):
            members = [i for i in word if new_position[i] >= 0]
            if members:
                groups.append(members)
        matrix = pool_groups(matrix, [[int(new_position[i]) for i in g] for g in groups])
    return DisplayMatrix(np.asarray(matrix, dtype=np.float32), groups, bool(hide_special))
