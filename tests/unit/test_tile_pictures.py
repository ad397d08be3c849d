"""Pooled tiles kept and cut from a whole max-pooled head (service.Service.tile): the values equal a pass over
the weights, bit for bit, and a repeated or derivable tile reads no weights again."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fake_results import result_over

from visualizeai import service as service_module
from visualizeai.attention.store import DenseStore, aligned_edges
from visualizeai.config import Settings
from visualizeai.service import Service, cut_max_picture, cut_plan, whole_bin_width


class CountingStore(DenseStore):
    """A dense store that counts the rows its chunks read."""

    def __init__(self, array):
        super().__init__(array)
        self.rows_read = 0

    def _chunks(self, layer, heads, rows, cols):
        for start, w in super()._chunks(layer, heads, rows, cols):
            self.rows_read += w.shape[1]
            yield start, w


def weights(n: int, seed: int = 0) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(1, 2, n, n, generator=g) * 4
    return torch.softmax(scores, -1).numpy()


@pytest.mark.parametrize(
    ("n", "width", "rows", "cols", "size", "cut"),
    [
        (64, 4, (0, 64), (0, 64), 8, True),  # the whole head, bins of 8 from bins of 4
        (64, 4, (32, 64), (0, 32), 8, True),  # a quarter: the next zoom level
        (64, 4, (0, 32), (0, 32), 16, False),  # bins of 2 are finer than the picture's
        (66, 4, (0, 64), (0, 64), 8, True),  # n past a power of two: the grid's tile of 64 cells
        (66, 4, (0, 64), (64, 66), 8, False),  # the two columns left over: read as exact weights
        (66, 4, (0, 66), (0, 66), 8, False),  # edges ⌊i·66/8⌋ are not multiples of 4
        (50, 2, (20, 44), (4, 28), 6, True),
    ],
)
def test_cut_tiles_equal_a_pass_over_the_weights(n, width, rows, cols, size, cut):
    store = DenseStore(weights(n))
    whole = store.max_picture(0, 1, width)
    plan = cut_plan(aligned_edges(n, width), rows, cols, size)
    if not cut:
        assert plan is None
        return
    expected = store.pooled(0, 1, rows, cols, size=size, pool="max")
    np.testing.assert_array_equal(cut_max_picture(whole, plan), expected)


def test_whole_bin_width_keeps_the_picture_within_its_bins():
    most = service_module.WHOLE_PICTURE_BINS
    assert whole_bin_width(most) == 1 and whole_bin_width(most + 1) == 2
    assert whole_bin_width(16_386) == 16  # 1,025 bins a side
    assert whole_bin_width(32_768) == 16 and whole_bin_width(32_769) == 32


@pytest.fixture
def service(monkeypatch, tmp_path):
    monkeypatch.setattr(service_module, "WHOLE_PICTURE_BINS", 16)  # bins of 4 at 64 tokens
    monkeypatch.setattr(service_module, "TILE_MAX_SIZE", 16)  # a whole picture past 16 tokens
    return Service(Settings(offline=True, allowed_roots=(tmp_path,)))


def test_pooled_tiles_are_kept_and_cut_from_the_whole_head(service):
    n = 64
    store = CountingStore(weights(n, 1))
    key = service.adopt(result_over(store), "pictures").key
    service.warm(key)  # the whole head in bins of 4, as the heatmap's first picture
    assert store.rows_read == n
    first = [((0, n), (0, n), 8), ((32, 64), (0, 32), 8), ((0, n), (0, n), 4), ((0, 32), (32, 64), 4)]
    for rows, cols, size in first:
        tile = service.tile(key, 0, 0, rows, cols, size, "max")
        np.testing.assert_array_equal(tile.matrix, store.pooled(0, 0, rows, cols, size=size, pool="max"))
    store.rows_read = 0
    for rows, cols, size in [((0, n), (0, n), 8), ((32, 64), (0, 32), 8)]:
        service.tile(key, 0, 0, rows, cols, size, "max")
    assert store.rows_read == 0  # cut from the kept picture
    mean = service.tile(key, 0, 0, (0, 32), (0, 32), 8, "mean")
    assert store.rows_read == 32
    again = service.tile(key, 0, 0, (0, 32), (0, 32), 8, "mean")
    assert store.rows_read == 32 and again.matrix is mean.matrix  # kept


def test_the_first_large_tile_computes_the_whole_head_a_small_one_only_its_rows(service):
    """A tile over at least half the head (the first picture of a screen whose grid does not cover the whole
    matrix with one tile) computes the whole picture it is cut from; a zoomed-in tile first reads its rows."""
    n = 66  # past a power of two, as most texts: the grid's top tiles are 0:64 and 64:66
    store = CountingStore(weights(n, 2))
    key = service.adopt(result_over(store), "first").key
    small = service.tile(key, 0, 0, (0, 16), (0, 64), 4, "max")
    assert store.rows_read == 16
    store.rows_read = 0
    tile = service.tile(key, 0, 0, (0, 64), (0, 64), 8, "max")
    assert store.rows_read == n  # one pass: the whole head in bins of 8 (66 > 16·4)
    np.testing.assert_array_equal(small.matrix, store.pooled(0, 0, (0, 16), (0, 64), size=4, pool="max"))
    np.testing.assert_array_equal(tile.matrix, store.pooled(0, 0, (0, 64), (0, 64), size=8, pool="max"))
    store.rows_read = 0
    service.tile(key, 0, 0, (0, 64), (0, 32), 4, "max")  # the next level: cut
    assert store.rows_read == 0


def test_a_short_analysis_is_not_warmed(service):
    store = CountingStore(weights(16))
    key = service.adopt(result_over(store), "short").key
    service.warm(key)
    assert store.rows_read == 0


class QuickStore(CountingStore):
    """A store whose whole picture has a quick form (as the forward pass's log-sum-exp gives), marked apart
    from the exact one so that the test sees which the service kept."""

    def has_quick_picture(self, layer):
        return True

    def quick_max_picture(self, layer, head, width):
        self.quick_calls += 1
        return self.max_picture(layer, head, width) + 1.0  # marked: no weight exceeds 1

    quick_calls = 0


def test_the_first_picture_is_the_quick_one_and_the_warm_up_replaces_it_with_the_exact_one(service):
    n = 64
    store = QuickStore(weights(n, 3))
    key = service.adopt(result_over(store), "quick").key
    first = service.tile(key, 0, 0, (0, n), (0, n), 8, "max")  # the page's first picture, before any warm-up
    assert store.quick_calls == 1 and first.matrix.min() >= 1.0
    service.warm(key).join()  # the quick picture is kept: then the exact pass replaces it
    assert store.quick_calls == 1
    exact = store.max_picture(0, 0, 4)
    np.testing.assert_array_equal(service.pictures.get(f"{key}|0|0|whole:4"), exact)
    quarter = service.tile(key, 0, 0, (32, 64), (0, 32), 8, "max")  # cut from the exact picture now
    np.testing.assert_array_equal(quarter.matrix, store.pooled(0, 0, (32, 64), (0, 32), size=8, pool="max"))
