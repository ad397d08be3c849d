"""Per-head statistics on hand-built heads, and invariance to padding."""

from __future__ import annotations

import numpy as np
import pytest
from attention_strategies import attention
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from visualizeai.analysis.head_stats import (
    STAT_DESCRIPTIONS,
    STAT_NAMES,
    head_statistics,
    punctuation_mask,
)

N = 6
NO_TOKENS = np.zeros(N, dtype=bool)


def stats_of(*heads: np.ndarray, special=NO_TOKENS, punctuation=NO_TOKENS, valid=None) -> dict:
    attn = np.stack(heads)[None].astype(np.float32)  # one layer
    return head_statistics(attn, special, punctuation, valid)


def previous_token_head(n: int = N) -> np.ndarray:
    head = np.eye(n, k=-1)
    head[0, 0] = 1.0  # the first token has no previous token and looks at itself
    return head


def test_names_descriptions_shapes_and_dtypes():
    attn = np.full((2, 3, N, N), 1 / N, dtype=np.float32)
    stats = head_statistics(attn, NO_TOKENS, NO_TOKENS)
    assert tuple(stats) == STAT_NAMES
    assert set(STAT_DESCRIPTIONS) == set(STAT_NAMES)
    assert all(isinstance(text, str) and text for text in STAT_DESCRIPTIONS.values())
    for values in stats.values():
        assert values.shape == (2, 3) and values.dtype == np.float32


def test_previous_token_head():
    stats = stats_of(previous_token_head())
    assert stats["previous_share"][0, 0] == pytest.approx(1.0)
    assert stats["next_share"][0, 0] == 0.0
    assert stats["self_share"][0, 0] == pytest.approx(1 / N)
    assert stats["entropy"][0, 0] == pytest.approx(0.0, abs=1e-6)
    assert stats["mean_distance"][0, 0] == pytest.approx((N - 1) / N)


def test_next_token_head():
    head = np.eye(N, k=1)
    head[-1, -1] = 1.0
    stats = stats_of(head)
    assert stats["next_share"][0, 0] == pytest.approx(1.0)
    assert stats["previous_share"][0, 0] == 0.0


def test_identity_head():
    stats = stats_of(np.eye(N))
    assert stats["self_share"][0, 0] == pytest.approx(1.0)
    assert stats["entropy"][0, 0] == pytest.approx(0.0, abs=1e-6)
    assert stats["mean_distance"][0, 0] == 0.0
    assert stats["sink_share"][0, 0] == pytest.approx(1 / N)


@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_uniform_head(n):
    uniform = np.full((n, n), 1 / n)
    none = np.zeros(n, dtype=bool)
    stats = stats_of(uniform, special=none, punctuation=none)
    assert stats["entropy"][0, 0] == pytest.approx(np.log(n), abs=1e-5)
    i = np.arange(n)
    assert stats["mean_distance"][0, 0] == pytest.approx(np.abs(i[:, None] - i).mean(), rel=1e-5)
    for name in ("self_share", "sink_share"):
        assert stats[name][0, 0] == pytest.approx(1 / n)
    expected_neighbour = 1 / n if n > 1 else 0.0
    assert stats["previous_share"][0, 0] == pytest.approx(expected_neighbour)


def test_sink_special_and_punctuation_shares():
    sink = np.zeros((N, N))
    sink[:, 0] = 1.0
    special = np.array([True, False, False, False, False, True])
    punctuation = np.array([False, False, True, False, True, False])
    half = np.zeros((N, N))
    half[:, 2] = half[:, 4] = 0.25  # half on punctuation
    half[:, 5] = 0.5  # half on the final special token
    stats = stats_of(sink, half, special=special, punctuation=punctuation)
    np.testing.assert_allclose(stats["sink_share"][0], [1.0, 0.0])
    np.testing.assert_allclose(stats["special_share"][0], [1.0, 0.5])
    np.testing.assert_allclose(stats["punctuation_share"][0], [0.0, 0.5])


@st.composite
def padded(draw):
    """Attention of some valid tokens, and the same tokens with padding slipped in anywhere."""
    attn = draw(attention(max_n=6))
    layers, heads, n, _ = attn.shape
    big = n + draw(st.integers(0, 4))
    valid = np.ones(big, dtype=bool)
    valid[draw(st.lists(st.integers(0, big - 1), min_size=big - n, max_size=big - n, unique=True))] = False
    pad_rows = draw(attention(max_layers=1, max_heads=1, min_n=big, max_n=big))[0, 0]
    padded_attn = np.broadcast_to(pad_rows, (layers, heads, big, big)).copy()  # padded rows: anything
    keep = np.flatnonzero(valid)
    padded_attn[:, :, keep, :] = 0.0  # valid rows give padded keys no weight
    padded_attn[:, :, keep[:, None], keep] = attn
    special = draw(hnp.arrays(np.bool_, big))
    punctuation = draw(hnp.arrays(np.bool_, big))
    return attn, special, punctuation, padded_attn, valid


@given(padded())
def test_padding_never_counts(case):
    attn, special, punctuation, padded_attn, valid = case
    expected = head_statistics(attn, special[valid], punctuation[valid])
    got = head_statistics(padded_attn, special, punctuation, valid)
    for name in STAT_NAMES:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_all_padding_and_bad_masks_are_refused():
    attn = np.full((1, 1, 3, 3), 1 / 3, dtype=np.float32)
    none = np.zeros(3, dtype=bool)
    with pytest.raises(ValueError, match="no token as valid"):
        head_statistics(attn, none, none, none)
    with pytest.raises(ValueError, match=r"punctuation_mask must have shape \[3\]"):
        head_statistics(attn, none, np.zeros(4, dtype=bool))
    with pytest.raises(ValueError, match="special_mask must be a boolean mask"):
        head_statistics(attn, np.array([0, 0, 1]), none)


def test_punctuation_mask():
    tokens = [",", "hello", "...", "«", " ?", "", " ", "a.", "$", "—", "'s", "!?"]
    expected = [True, False, True, True, True, False, False, False, False, True, False, True]
    np.testing.assert_array_equal(punctuation_mask(tokens), expected)
    assert punctuation_mask([]).shape == (0,)
