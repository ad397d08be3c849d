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


def aggregate(attentions, layer: int | None, head: int | None, agg: str = "none") -> np.ndarray:
    """Select and average ``[layers, heads, n, n]``.

    ``agg`` is one of ``AGGREGATES``. The averaged axes disappear; ``layer``/``head`` pick from the axes that
    remain (an axis left unpicked stays in the result), and picking an averaged axis is an error. Returns, for
    ``agg="none"``, what ``transforms.select`` returns; for ``"mean_heads"`` ``[layers, n, n]`` or ``[n, n]``
    with a layer; for ``"mean_layers"`` ``[heads, n, n]`` or ``[n, n]`` with a head; for ``"mean_all"``
    ``[n, n]``.
    """
    if agg not in AGGREGATES:
        raise ValueError(AGG_ERROR.format(choices=", ".join(AGGREGATES), agg=agg))
    attn = _checks.attention(attentions)
    if agg in ("mean_heads", "mean_all") and head is not None:
        raise ValueError(AVERAGED_ERROR.format(name="head", agg=agg))
    if agg in ("mean_layers", "mean_all") and layer is not None:
        raise ValueError(AVERAGED_ERROR.format(name="layer", agg=agg))
    if agg == "none":
        return select(attn, layer, head)
    if agg == "mean_heads":
        if layer is None:
            return mean_over_heads(attn)  # [layers, n, n]
        select(attn, layer)  # range check
        return mean_over_heads(attn[layer : layer + 1])[0]  # [n, n]; only this layer is read
    if agg == "mean_layers":
        if head is None:
            return mean_over_layers(attn)  # [heads, n, n]
        select(attn, head=head)
        return mean_over_layers(attn[:, head : head + 1])[0]  # [n, n]
    return mean_over_heads(attn).mean(axis=0, dtype=np.float32)  # [n, n]


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
    """The matrix a view shows: ``aggregate``, then hide special tokens, then merge subwords.

    Hiding (``transforms.hide_tokens``) removes the special tokens' rows and columns and renormalises each
    row over the tokens left. Merging follows ``transforms.MERGE_RULE`` (sum over key pieces, mean over query
    pieces); words are found on the full token sequence (``transforms.word_groups``), so hiding a token
    between two words never glues them together.

    Args:
        attentions: float ``[layers, heads, n, n]``.
        special_mask: bool ``[n]``, True for tokens the tokenizer added.
        word_ids: int ``[n]``, -1 for tokens outside any word.

    Returns:
        ``DisplayMatrix`` with ``matrix`` shaped like ``aggregate``'s result but with ``m <= n`` tokens.
    """
    matrix = aggregate(attentions, layer, head, agg)
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
