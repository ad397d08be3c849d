"""Aggregates and comparisons of analysis results: what the Rollout and Atlas views and the Compare page show.

Numpy on ``AnalysisResult`` (the maths is in ``visualizeai.analysis``), reading attention only through its
store (``result.attention``): head statistics stream over bounded chunks of rows, rollout and flow take
per-layer head means, comparisons one matrix per side; never the dense ``[layers, heads, n, n]``. No web
framework.
``AggregateCache`` keeps what is expensive (rollout, flow, head statistics) beside the cached result, so each
is computed once per analysis key however many requests ask for it at the same time.
Nothing here checks the work budget: the service does, once per computation, before any work starts
(``visualizeai.budgets``; ``check_flow`` and ``flow_refusal`` are flow's check).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from visualizeai import budgets
from visualizeai.analysis.compare import align_tokens, align_words, aligned_difference, pool_to_words
from visualizeai.analysis.head_stats import STAT_NAMES, head_statistics_from_store, punctuation_mask
from visualizeai.analysis.result import AnalysisResult
from visualizeai.analysis.rollout import (
    FLOW_REFERENCE_LAYERS,
    FlowTooLarge,
    attention_flow,
    attention_rollout,
)
from visualizeai.analysis.transforms import hide_tokens
from visualizeai.budgets import RolloutTooLarge
from visualizeai.cache import BoundedLRU, KeyedLocks
from visualizeai.errors import InputError

COMPARE_MODES = ("sentences", "models")
SAME_MODEL_ERROR = (
    "Comparing two sentences needs one model, but A is {a!r} and B is {b!r}; to compare models on one text "
    "use mode=models."
)
SAME_TEXT_ERROR = (
    "Comparing two models needs one text, but A and B analysed different texts; use mode=sentences."
)
NO_WORDS_ERROR = "The text has no words that both tokenizations cover, so there is nothing to compare."


# ---- aggregates of one result ------------------------------------------------------------------------------


def check_rollout(result: AnalysisResult, budget: int) -> None:
    """``RolloutTooLarge`` (a ``WorkTooLarge`` naming the cost and the budget) when ``rollout(result)`` costs
    more than ``budget`` elements (``budgets.cost_rollout``)."""
    budgets.check_rollout(result.layers, result.heads, result.n, budget)


def _head_means(result: AnalysisResult, layers: int) -> np.ndarray:
    """float32 ``[layers, 1, n, n]``: the head mean of each of the first ``layers`` layers, read from the
    store one layer at a time. Rollout and flow average heads first, so this is all they need of them."""
    out = np.empty((layers, 1, result.n, result.n), dtype=np.float32)
    for layer in range(layers):
        out[layer, 0] = result.attention.layer_dense(layer, None)
    return out


# Rollout's result is float32 [layers, n, n] and analysis.rollout works in float64, so the peak while
# computing is about 7 times the result (measured 7.2). Within the default work budget (budgets.cost_rollout:
# 24 layers at 545 tokens) a result is at most 29 MB; a raised budget lets larger ones through, which the
# aggregate cache keeps in its oversize tier.
def rollout(result: AnalysisResult) -> np.ndarray:
    """Attention rollout of every layer: float32 ``[layers, n, n]`` (``analysis.rollout``), from the layers'
    head means. Its cost is checked first by the caller (``check_rollout``)."""
    return attention_rollout(_head_means(result, result.layers))


def flow(result: AnalysisResult, layer: int, budget: int = budgets.DEFAULT_WORK_BUDGET) -> np.ndarray:
    """Attention flow from every token at the output of ``layer`` to every input token: float32 ``[n, n]``.

    The caller checks ``budget`` first (``check_flow``); ``attention_flow`` refuses over the same figure.
    """
    check_layer(result, layer, "this analysis")
    max_work = budgets.flow_max_steps(budget)
    return attention_flow(_head_means(result, layer + 1), layer=layer, max_work=max_work)


def flow_max_tokens(layer: int, budget: int = budgets.DEFAULT_WORK_BUDGET) -> int:
    """Most tokens for which flow of every token at ``layer`` is within ``budget``: the largest n with
    ``FLOW_STEP · n⁴ · (layer + 1) <= budget`` (``budgets.cost_flow``)."""
    return budgets.flow_max_tokens(layer + 1, budget)


def flow_refusal(result: AnalysisResult, layer: int, budget: int = budgets.DEFAULT_WORK_BUDGET) -> str | None:
    """Why ``flow(result, layer)`` would be refused (FlowTooLarge's message), or None when it is allowed.
    Costs nothing: no attention is read."""
    check_layer(result, layer, "this analysis")
    return budgets.flow_refusal(result.n, result.n, layer + 1, budget, FLOW_REFERENCE_LAYERS)


def check_flow(result: AnalysisResult, layer: int, budget: int) -> None:
    """``FlowTooLarge`` (a ``WorkTooLarge`` saying the bound and why) when ``flow(result, layer)`` is over
    ``budget``."""
    reason = flow_refusal(result, layer, budget)
    if reason is not None:
        raise FlowTooLarge(reason)


def head_stats(result: AnalysisResult) -> dict[str, np.ndarray]:
    """Every ``STAT_NAMES`` statistic of every head: name -> float32 ``[layers, heads]``."""
    return head_statistics_from_store(
        result.attention, result.special_mask, punctuation_mask(result.display_tokens)
    )


def check_layer(result: AnalysisResult, layer: int, side: str) -> None:
    result.attention.check_layer(layer, side)


def check_head(result: AnalysisResult, head: int, side: str) -> None:
    result.attention.check_head(head, side)


def _nbytes(value: Any) -> int:
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values()) + 64
    return 64


class AggregateCache:
    """Values derived from cached results, keyed by (analysis key, what), each computed once at a time.

    Bounded like the result cache (LRU by count and bytes). A value larger than the whole byte bound (possible
    only with a raised work budget, e.g. a long rollout) goes to a second tier of at most ``oversize_items``
    values and ``oversize_bytes`` bytes, so it too is computed once rather than on every request. A second
    request for a value being computed waits for the first instead of computing it again; requests for
    different values never wait on each other. Keys are content hashes, so a value stays right for its key
    even after the result itself is evicted.
    """

    def __init__(
        self,
        max_items: int = 256,
        max_bytes: int = 256 * 2**20,
        oversize_items: int = 2,
        oversize_bytes: int = 2 * budgets.largest_value_bytes(budgets.DEFAULT_WORK_BUDGET),
    ):
        self._values: BoundedLRU[Any] = BoundedLRU(max_items, max_bytes, _nbytes)
        self._oversize: BoundedLRU[Any] = BoundedLRU(oversize_items, oversize_bytes, _nbytes)
        self._computing = KeyedLocks()  # one computation per value; different values never wait on each other

    def peek(self, key: str, what: str) -> Any:
        """The cached value of ``what`` for analysis ``key``, or None; never computes."""
        name = f"{key}|{what}"
        value = self._values.get(name)
        return self._oversize.get(name) if value is None else value

    def get(self, key: str, what: str, compute: Callable[[], Any]) -> Any:
        """The value of ``what`` for analysis ``key``: from the cache, or ``compute()`` once."""
        name = f"{key}|{what}"
        value = self.peek(key, what)
        if value is not None:
            return value
        with self._computing.hold(name):
            value = self.peek(key, what)  # whoever held the lock may have computed it
            if value is None:
                value = compute()
                if not self._values.put(name, value):
                    self._oversize.put(name, value)
            return value

    def __len__(self) -> int:
        return len(self._values) + len(self._oversize)


# ---- comparisons -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One side of a comparison: the matrix it shows and the labels of its rows (= columns)."""

    model: str
    layer: int
    head: int | None  # None: the layer's heads averaged
    labels: list[str]
    special: list[bool]
    tokens: list[list[int]]  # token positions of the result that each row stands for
    matrix: np.ndarray  # float32 [m, m]; rows are queries


@dataclass(frozen=True)
class Comparison:
    """Two attention matrices side by side and their difference on the rows (= columns) they share.

    ``mode`` "sentences": each side keeps its own token axis; the difference is ``a - b`` on the token pairs
    ``pairs`` that ``align_tokens`` matched. ``mode`` "models": both sides are pooled to the common word axis
    (``align_words``), so ``a.labels == b.labels == labels`` and ``pairs`` is ``[(k, k)]`` for every word.
    """

    mode: str
    a: Side
    b: Side
    labels: list[str]  # rows of the difference
    pairs: list[tuple[int, int]]  # (row of a, row of b) for each row of the difference
    difference: np.ndarray  # float32 [p, p]


def _select(result: AnalysisResult, layer: int, head: int | None, side: str) -> np.ndarray:
    """``[n, n]``: one head, or the layer's heads averaged when ``head`` is None."""
    check_layer(result, layer, side)
    if head is not None:
        check_head(result, head, side)
    return result.attention.layer_dense(layer, head)


def _token_label(display: str) -> str:
    """A token as a label: its display form, with blank tokens made visible (as ``tokenLabel`` in JS)."""
    if display.strip():
        return display
    return "␣" * min(len(display), 3) if display else "∅"


def _token_labels(result: AnalysisResult) -> list[str]:
    return [_token_label(t) for t in result.display_tokens]


def _each(n: int) -> list[list[int]]:
    return [[i] for i in range(n)]


def compare_sentences(
    a: AnalysisResult, b: AnalysisResult, layer: int, head: int | None, layer_b: int, head_b: int | None
) -> Comparison:
    """Two texts under one model (minimal pairs): both token matrices, and ``a - b`` on matched tokens."""
    if a.model_id != b.model_id or a.revision != b.revision:
        raise InputError(SAME_MODEL_ERROR.format(a=a.model_id, b=b.model_id))
    matrix_a = _select(a, layer, head, "A")
    matrix_b = _select(b, layer_b, head_b, "B")
    pairs = align_tokens(a.tokens, b.tokens)
    labels_a = _token_labels(a)
    side_a = Side(a.model_id, layer, head, labels_a, a.special_mask.tolist(), _each(a.n), matrix_a)
    side_b = Side(
        b.model_id, layer_b, head_b, _token_labels(b), b.special_mask.tolist(), _each(b.n), matrix_b
    )
    difference = aligned_difference(matrix_a, matrix_b, pairs)
    return Comparison("sentences", side_a, side_b, [labels_a[i] for i, _ in pairs], pairs, difference)


def _word_matrix(result: AnalysisResult, matrix: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """``[n, n] -> [w, w]``: special tokens hidden (rows renormalised), then pieces pooled into words."""
    shown, kept = hide_tokens(matrix, result.special_mask)
    new_index = np.full(result.n, -1, dtype=np.int64)
    new_index[kept] = np.arange(kept.size)
    return pool_to_words(shown, [new_index[g].tolist() for g in groups])


def compare_models(
    a: AnalysisResult, b: AnalysisResult, layer: int, head: int | None, layer_b: int, head_b: int | None
) -> Comparison:
    """One text under two models: both pooled to the words the two tokenizations share (through character
    offsets, so WordPiece, BPE and SentencePiece meet), and their difference on that common axis.

    Special tokens are hidden and each row renormalised over the words before pooling (``MERGE_RULE``: keys
    summed, queries averaged), so every row sums to 1 over the words and the models compare like for like.
    """
    if a.text != b.text:
        raise InputError(SAME_TEXT_ERROR)
    matrix_a = _select(a, layer, head, "A")
    matrix_b = _select(b, layer_b, head_b, "B")
    words = align_words(a.offsets, a.special_mask, b.offsets, b.special_mask, a.text)
    if not words:
        raise InputError(NO_WORDS_ERROR)
    labels = [a.text[start:end] for start, end in (w.span for w in words)]
    groups_a = [w.tokens_a for w in words]
    groups_b = [w.tokens_b for w in words]
    pooled_a = _word_matrix(a, matrix_a, groups_a)
    pooled_b = _word_matrix(b, matrix_b, groups_b)
    no_special = [False] * len(words)
    return Comparison(
        "models",
        Side(a.model_id, layer, head, labels, no_special, groups_a, pooled_a),
        Side(b.model_id, layer_b, head_b, labels, no_special, groups_b, pooled_b),
        labels,
        [(k, k) for k in range(len(words))],
        pooled_a - pooled_b,
    )


def check_compare(
    mode: str, a: AnalysisResult, b: AnalysisResult, head: int | None, head_b: int | None, budget: int
) -> None:
    """``WorkTooLarge`` when comparing ``a`` and ``b`` costs more than ``budget`` (``budgets.cost_compare``):
    each side reads one head, or all of a layer's heads when ``head`` is None."""
    cells_a = (a.heads if head is None else 1) * a.n * a.n
    cells_b = (b.heads if head_b is None else 1) * b.n * b.n
    budgets.check_compare(mode, cells_a, cells_b, a.n, b.n, budget)


def compare(
    mode: str,
    a: AnalysisResult,
    b: AnalysisResult,
    layer: int,
    head: int | None,
    layer_b: int | None = None,
    head_b: int | None = None,
) -> Comparison:
    """``compare_sentences`` or ``compare_models`` by ``mode``; B shows ``layer_b``/``head_b``, by default the
    same layer and head as A (one synchronised control)."""
    if mode not in COMPARE_MODES:
        raise InputError(f"mode must be one of {', '.join(COMPARE_MODES)}; got {mode!r}.")
    layer_b = layer if layer_b is None else layer_b
    head_b = head if head_b is None else head_b
    if mode == "sentences":
        return compare_sentences(a, b, layer, head, layer_b, head_b)
    return compare_models(a, b, layer, head, layer_b, head_b)


__all__ = [
    "COMPARE_MODES",
    "STAT_NAMES",
    "AggregateCache",
    "Comparison",
    "RolloutTooLarge",
    "Side",
    "check_compare",
    "check_flow",
    "check_rollout",
    "compare",
    "compare_models",
    "compare_sentences",
    "flow",
    "flow_max_tokens",
    "flow_refusal",
    "head_stats",
    "rollout",
]
