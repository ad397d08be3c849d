"""row_focus: what one query position attends to most in each layer, averaged over heads; from an array or
from an attention store, one query row per layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from visualizeai.analysis.focus import row_focus, row_focus_from_store
from visualizeai.attention.captured import CapturedStore, LayerQK
from visualizeai.attention.store import DenseStore


def _attention() -> np.ndarray:
    """2 layers × 2 heads × 4 tokens; only query row 2 matters here, other rows are uniform."""
    attn = np.full((2, 2, 4, 4), 0.25, dtype=np.float32)
    attn[0, 0, 2] = [0.1, 0.6, 0.2, 0.1]
    attn[0, 1, 2] = [0.3, 0.2, 0.2, 0.3]  # layer 0 mean: [0.2, 0.4, 0.2, 0.2]
    attn[1, 0, 2] = [0.0, 0.0, 0.0, 1.0]
    attn[1, 1, 2] = [0.5, 0.0, 0.0, 0.5]  # layer 1 mean: [0.25, 0, 0, 0.75]
    return attn


def test_keys_ranked_by_head_mean_per_layer():
    focus = row_focus(_attention(), 2, k=2)
    assert focus.position == 2
    assert focus.indices.dtype == np.int32 and focus.weights.dtype == np.float32
    assert focus.indices.tolist() == [[1, 0], [3, 0]]  # ties (0.2 × 3 in layer 0) keep position order
    np.testing.assert_allclose(focus.weights, [[0.4, 0.2], [0.75, 0.25]], atol=1e-7)
    np.testing.assert_allclose(focus.row, [[0.2, 0.4, 0.2, 0.2], [0.25, 0.0, 0.0, 0.75]], atol=1e-7)


def test_ignored_keys_are_skipped_but_weights_not_renormalised():
    ignore = np.array([False, True, False, True])
    focus = row_focus(_attention(), 2, k=3, ignore=ignore)
    assert focus.indices.tolist() == [[0, 2], [0, 2]]  # only two eligible keys: k shrinks to 2
    np.testing.assert_allclose(focus.weights, [[0.2, 0.2], [0.25, 0.0]], atol=1e-7)


def test_k_larger_than_n_returns_every_key():
    focus = row_focus(_attention(), 0, k=10)
    assert focus.indices.shape == (2, 4)
    assert sorted(focus.indices[0].tolist()) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"position": 4}, "position 4 is out of range"),
        ({"position": -1}, "position -1 is out of range"),
        ({"position": 0, "k": 0}, "k must be a positive integer"),
        ({"position": 0, "k": True}, "k must be a positive integer"),
        ({"position": 0, "ignore": np.array([0, 1, 0, 0])}, "must be a boolean mask"),
        ({"position": 0, "ignore": np.array([True, False])}, r"ignore must have shape \[4\]"),
    ],
)
def test_bad_arguments_name_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        row_focus(_attention(), **kwargs)


def test_bad_attention_shape():
    with pytest.raises(ValueError, match=r"attentions must have shape \[layers, heads, n, n\]"):
        row_focus(np.ones((2, 4, 4)), 0)


class RowSpy(DenseStore):
    """A DenseStore that records the row ranges read and refuses reads of whole matrices."""

    def __init__(self, attn):
        super().__init__(attn)
        self.reads: list[tuple[int, tuple[int, int]]] = []

    def head_rows(self, layer, rows):
        self.reads.append((layer, rows))
        return super().head_rows(layer, rows)

    def dense(self, max_bytes=0):
        raise AssertionError("dense() read")

    def block(self, *args, **kwargs):
        raise AssertionError("block() read")


def test_from_a_store_reads_one_row_per_layer_and_equals_the_array_version():
    store = RowSpy(_attention())
    focus = row_focus_from_store(store, 2, k=2, ignore=np.array([False, False, True, False]))
    assert store.reads == [(0, (2, 3)), (1, (2, 3))]
    expected = row_focus(_attention(), 2, k=2, ignore=np.array([False, False, True, False]))
    for field in ("indices", "weights", "row"):
        np.testing.assert_array_equal(getattr(focus, field), getattr(expected, field), err_msg=field)
    assert focus.indices.tolist() == [[1, 0], [3, 0]]


def test_from_captured_queries_and_keys_equals_the_head_mean_of_its_weights():
    n, heads, dim = 11, 4, 8
    g = torch.Generator().manual_seed(3)
    layers = [
        LayerQK(
            torch.randn(1, heads, n, dim, generator=g) * 3,
            torch.randn(1, 2, n, dim, generator=g),  # grouped queries: two heads per key head
            torch.zeros((1, n), dtype=torch.int64),
            (torch.arange(n) + 1)[None],  # causal
            dim**-0.5,
        )
        for _ in range(3)
    ]
    store = CapturedStore(layers)
    focus = row_focus_from_store(store, 7, k=4)
    dense = store.dense()
    np.testing.assert_allclose(focus.row, dense[:, :, 7].mean(axis=1), atol=1e-6)
    assert (focus.indices <= 7).all()  # causal: never a later key
    np.testing.assert_array_equal(focus.indices, row_focus(dense, 7, k=4).indices)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"position": 4}, "position 4 is out of range"),
        ({"position": 0, "k": 0}, "k must be a positive integer"),
        ({"position": 0, "ignore": np.array([True, False])}, r"ignore must have shape \[4\]"),
    ],
)
def test_store_version_names_the_problem_too(kwargs, message):
    with pytest.raises(ValueError, match=message):
        row_focus_from_store(DenseStore(_attention()), **kwargs)
