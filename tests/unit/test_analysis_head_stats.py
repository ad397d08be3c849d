"""Per-head statistics on hand-built heads, invariance to padding, and the streaming computation from an
attention store (equal to a plain dense reference, whatever the chunking, on dense and captured stores)."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch
from attention_strategies import attention
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from visualizeai.analysis.head_stats import (
    STAT_DESCRIPTIONS,
    STAT_NAMES,
    head_statistics,
    head_statistics_from_store,
    punctuation_mask,
)
from visualizeai.attention import store as store_module
from visualizeai.attention.captured import CapturedStore, LayerQK
from visualizeai.attention.store import DenseStore

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


# ---- streaming from a store --------------------------------------------------------------------------------


def reference_statistics(attn, special, punctuation, valid=None) -> dict[str, np.ndarray]:
    """The statistics written plainly on the whole array in float64 (padding dropped first), as a check
    independent of the chunked implementation."""
    attn = np.asarray(attn, dtype=np.float64)
    if valid is not None:
        keep = np.flatnonzero(valid)
        attn = attn[:, :, keep][:, :, :, keep]
        special, punctuation = special[keep], punctuation[keep]
    m = attn.shape[-1]
    i = np.arange(m)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(attn > 0, attn * np.log(attn), 0.0)
    neighbours = {
        "previous_share": np.diagonal(attn, -1, 2, 3) if m > 1 else np.zeros(attn.shape[:2] + (1,)),
        "next_share": np.diagonal(attn, 1, 2, 3) if m > 1 else np.zeros(attn.shape[:2] + (1,)),
    }
    return {
        "entropy": -plogp.sum(-1).mean(-1),
        "mean_distance": (attn * np.abs(i[:, None] - i[None, :])).sum(-1).mean(-1),
        "special_share": attn[..., special].sum(-1).mean(-1),
        "punctuation_share": attn[..., punctuation].sum(-1).mean(-1),
        "self_share": np.diagonal(attn, 0, 2, 3).mean(-1),
        **{name: values.mean(-1) for name, values in neighbours.items()},
        "sink_share": attn[..., 0].mean(-1),
    }


def small_chunks(rows: int, heads: int, n: int):
    """Patch the store's chunk bound so ``head_rows`` yields ``rows`` query rows at a time."""
    return mock.patch.object(store_module, "CHUNK_ELEMENTS", rows * heads * n)


def assert_same(got: dict, expected: dict, atol: float = 2e-6) -> None:
    assert tuple(got) == STAT_NAMES
    for name in STAT_NAMES:
        assert got[name].dtype == np.float32
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=atol, err_msg=name)


@given(padded(), st.integers(1, 3))
def test_streaming_equals_the_dense_reference_in_several_chunks(case, rows):
    attn, special, punctuation, padded_attn, valid = case
    layers, heads, n, _ = padded_attn.shape
    expected = reference_statistics(attn, special[valid], punctuation[valid])
    whole = head_statistics_from_store(DenseStore(padded_attn), special, punctuation, valid)
    with small_chunks(rows, heads, n):
        chunks = list(DenseStore(padded_attn).head_rows(0, (0, n)))
        assert len(chunks) == -(-n // rows)  # really several chunks when n > rows
        chunked = head_statistics_from_store(DenseStore(padded_attn), special, punctuation, valid)
        array = head_statistics(padded_attn, special, punctuation, valid)
    assert_same(whole, expected)
    assert_same(chunked, expected)
    for name in STAT_NAMES:  # the array function is the streaming one over a DenseStore
        np.testing.assert_array_equal(array[name], chunked[name], err_msg=name)


class CountingStore(DenseStore):
    """A DenseStore that records the chunks it hands out and refuses every read of whole matrices."""

    def __init__(self, attn):
        super().__init__(attn)
        self.chunk_elements: list[int] = []

    def head_rows(self, layer, rows):
        for start, chunk in super().head_rows(layer, rows):
            self.chunk_elements.append(chunk.size)
            yield start, chunk

    def dense(self, max_bytes=0):
        raise AssertionError("dense() read")

    def block(self, *args, **kwargs):
        raise AssertionError("block() read")


def test_streaming_reads_bounded_row_chunks_only():
    layers, heads, n = 2, 3, 40
    attn = np.random.default_rng(0).dirichlet(np.ones(n), size=(layers, heads, n)).astype(np.float32)
    store = CountingStore(attn)
    nothing = np.zeros(n, dtype=bool)
    with small_chunks(5, heads, n):
        got = head_statistics_from_store(store, nothing, nothing)
    assert len(store.chunk_elements) == layers * n // 5
    assert max(store.chunk_elements) == 5 * heads * n  # never a whole head's n × n
    assert_same(got, reference_statistics(attn, nothing, nothing))


@pytest.mark.parametrize("causal", [False, True])
def test_streaming_from_captured_queries_and_keys(causal):
    """A captured store (grouped queries, peaked weights) gives the statistics of its own dense weights."""
    n, heads, kv_heads, dim = 29, 4, 2, 8
    g = torch.Generator().manual_seed(5)
    rows = torch.arange(n)
    hi = (rows + 1 if causal else torch.full((n,), n))[None]
    layers = [
        LayerQK(
            torch.randn(1, heads, n, dim, generator=g) * 3,
            torch.randn(1, kv_heads, n, dim, generator=g),
            torch.zeros((1, n), dtype=torch.int64),
            hi,
            dim**-0.5,
        )
        for _ in range(2)
    ]
    store = CapturedStore(layers)
    special = np.zeros(n, dtype=bool)
    special[[0, -1]] = True
    punctuation = np.arange(n) % 4 == 3
    expected = reference_statistics(store.dense(), special, punctuation)
    with (
        small_chunks(4, heads, n),
        mock.patch("visualizeai.attention.captured.CHUNK_ELEMENTS", 4 * heads * n),
    ):
        assert len(list(store.head_rows(0, (0, n)))) > 1
        got = head_statistics_from_store(store, special, punctuation)
    assert_same(got, expected)


def test_a_store_is_checked_like_an_array():
    store = DenseStore(np.full((1, 1, 3, 3), 1 / 3, dtype=np.float32))
    none = np.zeros(3, dtype=bool)
    with pytest.raises(ValueError, match="no token as valid"):
        head_statistics_from_store(store, none, none, none)
    with pytest.raises(ValueError, match=r"special_mask must have shape \[3\]"):
        head_statistics_from_store(store, np.zeros(2, dtype=bool), none)
