"""row_focus: what one query position attends to most in each layer, averaged over heads."""

from __future__ import annotations

import numpy as np
import pytest

from visualizeai.analysis.focus import row_focus


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
