"""Comparing attention: two models on the same text (aligned by words), or two texts on one model
(aligned by tokens)."""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from visualizeai.analysis import _checks
from visualizeai.analysis.transforms import pool_groups

SHAPE_MISMATCH_ERROR = "a has shape {a} but b has shape {b}; they must be equal"
OFFSETS_ERROR = "{name} must have shape [n, 2] with 0 <= start <= end <= len(text) = {length}; got {problem}"
PAIRS_ERROR = "pairs must hold (index in a, index in b) with 0 <= i < {n} and 0 <= j < {m}; got {pair}"


class WordAlignment(NamedTuple):
    """One word of the text and the tokens of each tokenisation that make it up (ascending positions)."""

    span: tuple[int, int]  # characters text[start:end]
    tokens_a: list[int]
    tokens_b: list[int]


def difference(a, b) -> np.ndarray:
    """``a - b`` for two attention matrices of the same shape ``[..., n, n]``, as float32."""
    a = _checks.square(a, "a")
    b = _checks.square(b, "b")
    if a.shape != b.shape:
        raise ValueError(SHAPE_MISMATCH_ERROR.format(a=a.shape, b=b.shape))
    return a - b


def _is_punctuation(char: str) -> bool:
    return unicodedata.category(char).startswith("P")


def _units(text: str) -> list[tuple[int, int]]:
    """Character spans that no word boundary can cut: maximal runs of punctuation or of other non-space
    characters. ``"don't!"`` gives ``don``, ``'``, ``t``, ``!``."""
    units: list[tuple[int, int]] = []
    start = None
    for i, char in enumerate(text + " "):
        boundary = char.isspace() or (
            start is not None and _is_punctuation(char) != _is_punctuation(text[start])
        )
        if start is not None and boundary:
            units.append((start, i))
            start = None
        if start is None and not char.isspace():
            start = i
    return units


def _token_spans(offsets, special, text: str, side: str) -> list[tuple[int, int, int]]:
    """``(token, start, end)`` of the non-special tokens, checked against ``text``."""
    name = f"offsets_{side}"
    offsets = np.asarray(offsets)
    if offsets.ndim != 2 or offsets.shape[1] != 2 or not np.issubdtype(offsets.dtype, np.integer):
        raise ValueError(OFFSETS_ERROR.format(name=name, length=len(text), problem=f"shape {offsets.shape}"))
    special = _checks.bool_vector(special, offsets.shape[0], f"special_{side}")
    spans = []
    for token, (start, end) in enumerate(offsets.tolist()):
        if special[token]:
            continue
        if not 0 <= start <= end <= len(text):
            raise ValueError(OFFSETS_ERROR.format(name=name, length=len(text), problem=f"({start}, {end})"))
        spans.append((token, start, end))
    return spans


def align_words(offsets_a, special_a, offsets_b, special_b, text: str) -> list[WordAlignment]:
    """Align two tokenisations of the same ``text`` word by word, through character offsets.

    A word is a whitespace-separated stretch of text, split further where punctuation starts or stops,
    then merged with its neighbours until no token of either side crosses a word boundary. So each word
    is the smallest such stretch that is a union of whole tokens on both sides: WordPiece ``play ##ing``
    and BPE ``playing`` meet at ``playing``; ``don ' t`` and ``don 't`` give ``don`` and ``'t``.

    Special tokens are left out. A token of only whitespace (a lone ``Ġ`` or ``▁``) joins the word that
    follows it. Words that only one side covers (say, past the other side's truncation) keep an empty list
    for the other side; stretches that no token covers are left out.

    Args:
        offsets_a, offsets_b: int ``[n, 2]`` and ``[m, 2]`` character spans into ``text``.
        special_a, special_b: bool ``[n]`` and ``[m]``.

    Returns:
        One ``WordAlignment(span, tokens_a, tokens_b)`` per word, in text order.
    """
    spans = {
        "a": _token_spans(offsets_a, special_a, text, "a"),
        "b": _token_spans(offsets_b, special_b, text, "b"),
    }
    units = _units(text)
    starts = np.array([u[0] for u in units], dtype=np.int64)
    ends = np.array([u[1] for u in units], dtype=np.int64)
    # joined[u] = some token covers both unit u and unit u + 1, so they belong to one word
    joined = np.zeros(max(len(units) - 1, 0), dtype=bool)
    covered = np.zeros(len(units), dtype=bool)
    # Spaces lie outside every unit: the space that byte-level BPE and SentencePiece tokens may carry
    # before a word joins nothing, and a token of only whitespace covers no unit at all.
    for side in spans.values():
        for _, start, end in side:
            first = int(np.searchsorted(ends, start, side="right"))  # first unit ending after start
            last = int(np.searchsorted(starts, end, side="left")) - 1  # last unit starting before end
            if first <= last:
                covered[first : last + 1] = True
                joined[first:last] = True
    words: list[tuple[int, int]] = []  # (first unit, last unit)
    for u in range(len(units)):
        if u > 0 and joined[u - 1]:
            words[-1] = (words[-1][0], u)
        else:
            words.append((u, u))
    words = [w for w in words if covered[w[0] : w[1] + 1].any()]
    word_starts = np.array([units[w[0]][0] for w in words], dtype=np.int64)
    word_ends = np.array([units[w[1]][1] for w in words], dtype=np.int64)

    members: dict[str, list[list[int]]] = {side: [[] for _ in words] for side in spans}
    for side, side_spans in spans.items():
        for token, start, _ in side_spans:
            if not words:
                break
            # the first word that ends after the token starts: the word holding it, or for a token of
            # only whitespace the word after it (the last word if none follows)
            index = int(np.searchsorted(word_ends, start, side="right"))
            members[side][min(index, len(words) - 1)].append(token)
    return [
        WordAlignment(
            (int(word_starts[k]), int(word_ends[k])), sorted(members["a"][k]), sorted(members["b"][k])
        )
        for k in range(len(words))
    ]


def pool_to_words(matrix, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """``[..., n, n] -> [..., w, w]``: token attention pooled into words, e.g. the ``tokens_a`` lists of
    ``align_words``. Same rule as ``merge_subwords`` (sum over a word's keys, mean over its queries).

    Tokens in no group (special tokens) are dropped, so rows sum to the share of attention that went to
    words; ``hide_tokens`` first if rows should sum to 1 among words. An empty group gives a zero row and
    column, so two sides pooled over the same alignment always have the same shape.
    """
    return pool_groups(matrix, groups)


def align_tokens(tokens_a: Sequence[str], tokens_b: Sequence[str]) -> list[tuple[int, int]]:
    """Matching positions of two token sequences (two texts, one tokenizer): ``[(i in a, j in b), ...]``.

    The longest matching blocks of ``difflib.SequenceMatcher`` (no junk heuristic), in ascending order;
    tokens that were inserted, deleted or replaced have no pair.
    """
    matcher = difflib.SequenceMatcher(a=list(tokens_a), b=list(tokens_b), autojunk=False)
    return [(i + k, j + k) for i, j, size in matcher.get_matching_blocks() for k in range(size)]


def aligned_difference(a, b, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """``a [..., n, n]``, ``b [..., m, m]`` -> float32 ``[..., p, p]``: ``a - b`` on the matched positions.

    Cell ``(x, y)`` compares the attention from matched token ``x`` to matched token ``y`` in both texts.
    The submatrices are not renormalised: both keep the weights their model gave.
    """
    a = _checks.square(a, "a")
    b = _checks.square(b, "b")
    if a.shape[:-2] != b.shape[:-2]:
        raise ValueError(SHAPE_MISMATCH_ERROR.format(a=a.shape, b=b.shape))
    n, m = a.shape[-1], b.shape[-1]
    for pair in pairs:
        if len(pair) != 2 or not (0 <= pair[0] < n and 0 <= pair[1] < m):
            raise ValueError(PAIRS_ERROR.format(n=n, m=m, pair=pair))
    ia = np.array([i for i, _ in pairs], dtype=np.int64)
    ib = np.array([j for _, j in pairs], dtype=np.int64)
    return a[..., ia[:, None], ia] - b[..., ib[:, None], ib]
