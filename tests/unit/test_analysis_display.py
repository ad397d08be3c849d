"""The matrix a view displays: aggregation, hidden special tokens and merged words, with token groups."""

from __future__ import annotations

import numpy as np
import pytest
from attention_strategies import attention
from hypothesis import given
from hypothesis import strategies as st

from visualizeai.analysis.display import (
    AGGREGATES,
    aggregate,
    aggregate_selection,
    display_attention,
    display_matrix,
)
from visualizeai.analysis.transforms import hide_tokens, mean_over_heads, mean_over_layers, merge_subwords

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(3, 4, 7, 7)) * 3
ATTN = (np.exp(LOGITS) / np.exp(LOGITS).sum(-1, keepdims=True)).astype(np.float32)  # [3, 4, 7, 7]
# [CLS] un ##believ ##able story [SEP] [PAD]-like extra special
SPECIAL = np.array([True, False, False, False, False, True, True])
WORD_IDS = np.array([-1, 0, 0, 0, 1, -1, -1])


def test_aggregate_shapes_and_values_equal_transforms():
    np.testing.assert_array_equal(aggregate(ATTN, 1, 2), ATTN[1, 2])
    np.testing.assert_array_equal(aggregate(ATTN, 1, None), ATTN[1])
    np.testing.assert_array_equal(aggregate(ATTN, 2, None, "mean_heads"), mean_over_heads(ATTN)[2])
    np.testing.assert_array_equal(aggregate(ATTN, None, None, "mean_heads"), mean_over_heads(ATTN))
    np.testing.assert_array_equal(aggregate(ATTN, None, 3, "mean_layers"), mean_over_layers(ATTN)[3])
    np.testing.assert_array_equal(aggregate(ATTN, None, None, "mean_layers"), mean_over_layers(ATTN))
    np.testing.assert_allclose(aggregate(ATTN, None, None, "mean_all"), ATTN.mean(axis=(0, 1)), rtol=1e-6)


@pytest.mark.parametrize(
    ("layer", "head", "agg", "message"),
    [
        (0, 1, "mean_heads", "head cannot be chosen with agg=mean_heads"),
        (0, None, "mean_layers", "layer cannot be chosen with agg=mean_layers"),
        (None, 0, "mean_all", "head cannot be chosen"),
        (0, None, "median", "agg must be one of none, mean_heads"),
        (3, None, "mean_heads", r"layer 3 is out of range"),
        (None, 4, "mean_layers", r"head 4 is out of range"),
    ],
)
def test_aggregate_refuses_what_it_cannot_pick(layer, head, agg, message):
    with pytest.raises(ValueError, match=message):
        aggregate(ATTN, layer, head, agg)


@pytest.mark.parametrize(
    ("agg", "layer", "head", "picks", "lead"),
    [
        ("none", 1, 2, [(1, 2)], ()),
        ("none", 1, None, [(1, 0), (1, 1), (1, 2), (1, 3)], (4,)),
        ("none", None, 2, [(0, 2), (1, 2), (2, 2)], (3,)),
        ("mean_heads", 2, None, [(2, None)], ()),
        ("mean_heads", None, None, [(0, None), (1, None), (2, None)], (3,)),
        ("mean_layers", None, 3, [(None, 3)], ()),
        ("mean_layers", None, None, [(None, 0), (None, 1), (None, 2), (None, 3)], (4,)),
        ("mean_all", None, None, [(None, None)], ()),
    ],
)
def test_selection_names_the_store_picks_behind_each_aggregate(agg, layer, head, picks, lead):
    assert aggregate_selection(agg, layer, head, 3, 4) == (picks, lead)

    # the picks, read as the store reads them (None: averaged), rebuild what aggregate returns
    def read(i, h):
        rows = ATTN if i is None else ATTN[i : i + 1]
        return (rows if h is None else rows[:, h : h + 1]).mean(axis=(0, 1))

    rebuilt = np.stack([read(i, h) for i, h in picks]).reshape(lead + (7, 7))
    np.testing.assert_allclose(aggregate(ATTN, layer, head, agg), rebuilt, rtol=1e-6)


def test_selection_refuses_what_aggregate_refuses():
    with pytest.raises(ValueError, match="head cannot be chosen with agg=mean_heads"):
        aggregate_selection("mean_heads", 0, 1, 3, 4)
    with pytest.raises(ValueError, match="agg must be one of"):
        aggregate_selection("median", 0, None, 3, 4)


def test_display_matrix_of_a_selected_matrix_equals_display_attention():
    whole = display_attention(ATTN, SPECIAL, WORD_IDS, layer=2, hide_special=True, merge_words=True)
    part = display_matrix(ATTN[2], SPECIAL, WORD_IDS, hide_special=True, merge_words=True)
    np.testing.assert_array_equal(part.matrix, whole.matrix)
    assert part.groups == whole.groups and part.renormalized
    with pytest.raises(ValueError, match=r"matrix must have shape \[\.\.\., n, n\]"):
        display_matrix(ATTN[0, 0, :3], SPECIAL, WORD_IDS)


def test_hidden_specials_equal_hide_tokens_and_rows_sum_to_one():
    shown = display_attention(ATTN, SPECIAL, WORD_IDS, layer=1, hide_special=True)
    expected, kept = hide_tokens(ATTN[1], SPECIAL)
    np.testing.assert_array_equal(shown.matrix, expected)
    assert shown.groups == [[1], [2], [3], [4]] and kept.tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(shown.matrix.sum(-1), 1.0, rtol=1e-5)
    assert shown.renormalized


def test_merged_words_equal_merge_subwords():
    shown = display_attention(ATTN, SPECIAL, WORD_IDS, layer=0, head=3, merge_words=True)
    expected, groups = merge_subwords(ATTN[0, 3], WORD_IDS)
    np.testing.assert_array_equal(shown.matrix, expected)
    assert shown.groups == groups == [[0], [1, 2, 3], [4], [5], [6]]
    assert not shown.renormalized


def test_hide_then_merge_equals_the_two_steps():
    shown = display_attention(ATTN, SPECIAL, WORD_IDS, agg="mean_all", hide_special=True, merge_words=True)
    hidden, kept = hide_tokens(ATTN.mean(axis=(0, 1)), SPECIAL)
    expected, _ = merge_subwords(hidden, WORD_IDS[kept])
    np.testing.assert_allclose(shown.matrix, expected, rtol=1e-6)
    assert shown.groups == [[1, 2, 3], [4]]
    np.testing.assert_allclose(shown.matrix.sum(-1), 1.0, rtol=1e-5)


def test_hiding_between_two_words_keeps_them_apart():
    # word ids restart after [SEP] in a sentence pair: "a [SEP] a" must stay two words once [SEP] is hidden
    attn = np.full((1, 1, 3, 3), 1 / 3, dtype=np.float32)
    special, word_ids = np.array([False, True, False]), np.array([0, -1, 0])
    shown = display_attention(attn, special, word_ids, layer=0, hide_special=True, merge_words=True)
    assert shown.groups == [[0], [2]] and shown.matrix.shape == (1, 2, 2)


def test_everything_special_is_refused():
    with pytest.raises(ValueError, match="every one of the 7 tokens is special"):
        display_attention(ATTN, np.ones(7, bool), WORD_IDS, layer=0, hide_special=True)


def test_mask_and_word_ids_are_checked():
    with pytest.raises(ValueError, match=r"special_mask must have shape \[7\]"):
        display_attention(ATTN, SPECIAL[:3], WORD_IDS, layer=0)
    with pytest.raises(ValueError, match="word_ids must hold integers"):
        display_attention(ATTN, SPECIAL, WORD_IDS.astype(float), layer=0)


@given(attention(max_n=9), st.data())
def test_any_options_keep_rows_stochastic_and_groups_cover_the_shown_tokens(attn, data):
    n = attn.shape[-1]
    special = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    special[data.draw(st.integers(0, n - 1))] = False  # at least one token stays
    word_ids = np.array(data.draw(st.lists(st.integers(-1, 3), min_size=n, max_size=n)))
    agg = data.draw(st.sampled_from(AGGREGATES))
    layer = 0 if agg in ("none", "mean_heads") else None
    hide, merge = data.draw(st.booleans()), data.draw(st.booleans())
    shown = display_attention(
        attn, special, word_ids, layer=layer, agg=agg, hide_special=hide, merge_words=merge
    )
    m = len(shown.groups)
    assert shown.matrix.shape[-2:] == (m, m)
    flat = sorted(i for g in shown.groups for i in g)
    assert flat == [i for i in range(n) if not (hide and special[i])]
    sums = shown.matrix.sum(-1)
    # a row whose whole weight was on hidden tokens stays zero; every other row sums to 1
    assert np.all((np.abs(sums - 1) < 1e-4) | (hide & (sums == 0)))
