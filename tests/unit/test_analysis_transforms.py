"""Selecting, averaging, hiding, merging, downsampling and encoding attention matrices."""

from __future__ import annotations

import numpy as np
import pytest
from attention_strategies import attention, matrix_and_mask
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from visualizeai.analysis.transforms import (
    MERGE_RULE,
    downsample,
    hide_tokens,
    mean_over_heads,
    mean_over_layers,
    merge_subwords,
    pool_groups,
    quantize_thumbnails,
    select,
    to_float16_bytes,
    word_groups,
)

ATTN = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)


def test_select_shapes_and_values():
    assert select(ATTN).shape == (2, 3, 4, 4)
    np.testing.assert_array_equal(select(ATTN, layer=1), ATTN[1])
    np.testing.assert_array_equal(select(ATTN, head=2), ATTN[:, 2])
    np.testing.assert_array_equal(select(ATTN, layer=1, head=2), ATTN[1, 2])


@pytest.mark.parametrize(
    ("layer", "head", "message"),
    [(2, None, r"layer 2 .* 0\.\.1"), (-1, None, "layer -1"), (None, 3, r"head 3 .* 0\.\.2")],
)
def test_select_out_of_range(layer, head, message):
    with pytest.raises(ValueError, match=message):
        select(ATTN, layer=layer, head=head)


def test_means():
    np.testing.assert_allclose(mean_over_heads(ATTN), ATTN.mean(axis=1))
    np.testing.assert_allclose(mean_over_layers(ATTN), ATTN.mean(axis=0))
    assert mean_over_heads(ATTN).shape == (2, 4, 4) and mean_over_layers(ATTN).shape == (3, 4, 4)


def test_shape_errors_name_the_argument():
    expected = r"attention must have shape \[layers, heads, n, n\].*got shape \(3, 4, 4\)"
    with pytest.raises(ValueError, match=expected):
        mean_over_heads(np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match=r"hidden_mask must have shape \[4\]"):
        hide_tokens(np.eye(4), np.zeros(3, dtype=bool))
    with pytest.raises(ValueError, match="matrix must have shape"):
        downsample(np.zeros((4, 3)), 2)


@given(matrix_and_mask())
def test_hide_tokens_rows_sum_to_one(case):
    attn, hidden = case
    hidden_before = hidden.copy()
    shown, kept = hide_tokens(attn, hidden)
    np.testing.assert_array_equal(kept, np.flatnonzero(~hidden))
    assert shown.shape == attn.shape[:2] + (kept.size, kept.size)
    sums = shown.sum(axis=-1)
    mass = attn[..., kept[:, None], kept].sum(axis=-1)
    np.testing.assert_allclose(sums[mass > 0], 1.0, atol=1e-5)
    np.testing.assert_array_equal(sums[mass == 0], 0.0)
    np.testing.assert_array_equal(hidden, hidden_before)


def test_hide_tokens_values_and_zero_rows():
    matrix = np.array([[1.0, 0.0, 0.0], [0.5, 0.25, 0.25], [0.2, 0.2, 0.6]], dtype=np.float32)
    shown, kept = hide_tokens(matrix, np.array([False, True, False]))
    np.testing.assert_array_equal(kept, [0, 2])
    np.testing.assert_allclose(shown, [[1.0, 0.0], [0.25, 0.75]])
    # token 1 gave all its attention to the hidden token 0: nothing is left, and the row stays zero (no NaN)
    matrix[1] = [1.0, 0.0, 0.0]
    shown, _ = hide_tokens(matrix, np.array([True, False, False]))
    np.testing.assert_allclose(shown, [[0.0, 0.0], [0.25, 0.75]])


def test_word_groups_are_runs_and_specials_stand_alone():
    assert word_groups(np.array([-1, 0, 0, 1, -1, -1, 2, 2, 2, -1])) == [
        [0],
        [1, 2],
        [3],
        [4],
        [5],
        [6, 7, 8],
        [9],
    ]
    # a sentence pair restarts word ids: the repeated id 0 is a new word, not merged across the [SEP]
    assert word_groups(np.array([0, 0, -1, 0, 1])) == [[0, 1], [2], [3], [4]]


def test_merge_subwords_hand_example():
    # tokens: [CLS] play ##ing [SEP]
    matrix = np.array(
        [[0.4, 0.2, 0.2, 0.2], [0.1, 0.5, 0.3, 0.1], [0.0, 0.6, 0.2, 0.2], [0.25, 0.25, 0.25, 0.25]],
        dtype=np.float32,
    )
    merged, groups = merge_subwords(matrix, np.array([-1, 0, 0, -1]))
    assert groups == [[0], [1, 2], [3]]
    expected = [
        [0.4, 0.4, 0.2],  # keys of "playing" summed
        [0.05, 0.8, 0.15],  # queries of "playing" averaged: mean of [0.1, 0.8, 0.1] and [0.0, 0.8, 0.2]
        [0.25, 0.5, 0.25],
    ]
    np.testing.assert_allclose(merged, expected, atol=1e-6)
    assert "summing" in MERGE_RULE and "averaging" in MERGE_RULE


@st.composite
def attention_and_word_ids(draw):
    attn = draw(attention())
    n = attn.shape[-1]
    ids = draw(hnp.arrays(np.int64, n, elements=st.integers(-1, 3)))
    return attn, np.sort(ids)  # sorted ids make multi-token words likely


@given(attention_and_word_ids())
def test_merge_subwords_reduces_length_and_keeps_rows_stochastic(case):
    attn, word_ids = case
    merged, groups = merge_subwords(attn, word_ids)
    assert merged.shape == attn.shape[:2] + (len(groups), len(groups))
    assert sorted(i for group in groups for i in group) == list(range(attn.shape[-1]))
    np.testing.assert_allclose(merged.sum(axis=-1), 1.0, atol=1e-5)
    if len(groups) < attn.shape[-1]:
        assert merged.shape[-1] < attn.shape[-1]


def test_pool_groups_any_order_empty_groups_and_errors():
    matrix = np.arange(16, dtype=np.float32).reshape(4, 4)
    pooled = pool_groups(matrix, [[3], [0, 2], []])
    expected_middle_row = (matrix[[0, 2]][:, [0, 2]].sum(axis=1)).mean()
    assert pooled.shape == (3, 3)
    assert pooled[1, 1] == pytest.approx(expected_middle_row)
    assert pooled[0, 1] == pytest.approx(matrix[3, 0] + matrix[3, 2])
    np.testing.assert_array_equal(pooled[2], 0.0)
    np.testing.assert_array_equal(pooled[:, 2], 0.0)
    with pytest.raises(ValueError, match="appears twice"):
        pool_groups(matrix, [[0, 1], [1]])
    with pytest.raises(ValueError, match="out of range"):
        pool_groups(matrix, [[4]])


@given(st.integers(1, 40), st.integers(1, 50), st.floats(0, 1, width=32), st.integers(0, 3))
def test_downsample_of_a_constant_is_constant(n, size, value, extra_dims):
    matrix = np.full((2,) * extra_dims + (n, n), value, dtype=np.float32)
    small = downsample(matrix, size)
    s = min(size, n)
    assert small.shape == (2,) * extra_dims + (s, s)
    np.testing.assert_allclose(small, value, rtol=1e-5)


def test_downsample_uneven_blocks_are_plain_means():
    matrix = np.arange(25, dtype=np.float32).reshape(5, 5)
    small = downsample(matrix, 2)  # blocks 0:2 and 2:5
    expected = [
        [matrix[:2, :2].mean(), matrix[:2, 2:].mean()],
        [matrix[2:, :2].mean(), matrix[2:, 2:].mean()],
    ]
    np.testing.assert_allclose(small, expected)


@pytest.mark.parametrize("size", [0, -3, 2.5, True, "4"])
def test_downsample_refuses_bad_sizes(size):
    with pytest.raises(ValueError, match="size must be a positive integer"):
        downsample(np.eye(4), size)


@given(attention(), st.integers(1, 10))
def test_quantize_thumbnails(attn, size):
    thumbs = quantize_thumbnails(attn, size)
    s = min(size, attn.shape[-1])
    assert thumbs.dtype == np.uint8 and thumbs.shape == attn.shape[:2] + (s, s)
    assert (thumbs.max(axis=(-2, -1)) == 255).all()  # every thumbnail is scaled to its own maximum
    small = downsample(attn, size)
    expected = np.rint(255 * small / small.max(axis=(-2, -1), keepdims=True))
    np.testing.assert_array_equal(thumbs, expected)


def test_quantize_all_zero_thumbnail_stays_zero():
    attn = np.zeros((1, 2, 4, 4), dtype=np.float32)
    attn[0, 1] = np.diag([1.0, 0.0, 0.4, 0.0])
    thumbs = quantize_thumbnails(attn, 2)  # block means 0.25 and 0.1
    np.testing.assert_array_equal(thumbs[0, 0], 0)
    np.testing.assert_array_equal(thumbs[0, 1], [[255, 0], [0, 102]])  # round(255 * 0.1 / 0.25) = 102


def test_to_float16_bytes_little_endian_c_order():
    matrix = np.arange(6, dtype=np.float32).reshape(2, 3) / 8
    data = to_float16_bytes(matrix.T)  # a non-contiguous view is written in C order of the view
    assert len(data) == 2 * 6
    decoded = np.frombuffer(data, dtype="<f2").reshape(3, 2)
    np.testing.assert_array_equal(decoded, matrix.T)
    assert data[:4] == b"\x00\x00\x00\x36"  # 0.0, then 0.375 = 0x3600 stored low byte first
    with pytest.raises(ValueError, match="real numbers"):
        to_float16_bytes(np.array(["a"]))
