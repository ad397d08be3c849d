"""Pooled tiles kept and cut from a whole max-pooled head (service.Service.tile): the values equal a pass over
the weights, bit for bit, and a repeated or derivable tile reads no weights again."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fake_results import result_over

from visualizeai import service as service_module
from visualizeai.attention.store import DenseStore
from visualizeai.config import Settings
from visualizeai.service import Service, cut_max_picture


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
    ("n", "picture", "rows", "cols", "size", "cut"),
    [
        (64, 16, (0, 64), (0, 64), 8, True),  # the whole head, bins of 8 from bins of 4
        (64, 16, (32, 64), (0, 32), 8, True),  # a quarter: the next zoom level
        (64, 16, (0, 32), (0, 32), 16, False),  # bins of 2 are finer than the picture's
        (50, 10, (0, 50), (0, 50), 5, True),  # bins of 10 of uneven ⌊i·n/R⌋ edges
        (50, 10, (20, 45), (5, 30), 5, True),
        (50, 10, (0, 48), (0, 48), 6, False),  # edges 0, 8, … are not the picture's
    ],
)
def test_cut_tiles_equal_a_pass_over_the_weights(n, picture, rows, cols, size, cut):
    store = DenseStore(weights(n))
    whole = store.pooled(0, 1, size=picture, pool="max")
    got = cut_max_picture(whole, n, rows, cols, size)
    if not cut:
        assert got is None
        return
    np.testing.assert_array_equal(got, store.pooled(0, 1, rows, cols, size=size, pool="max"))


@pytest.fixture
def service(monkeypatch, tmp_path):
    monkeypatch.setattr(service_module, "WHOLE_PICTURE", 16)
    return Service(Settings(offline=True, allowed_roots=(tmp_path,)))


def test_pooled_tiles_are_kept_and_cut_from_the_whole_head(service):
    n = 64
    store = CountingStore(weights(n, 1))
    key = service.adopt(result_over(store), "pictures").key
    service.warm(key)  # the whole head at 16², as the heatmap's first picture
    assert store.rows_read == n
    for rows, cols, size in [((0, n), (0, n), 8), ((32, 64), (0, 32), 8), ((0, n), (0, n), 4)]:
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


def test_a_short_analysis_is_not_warmed(service):
    store = CountingStore(weights(16))
    key = service.adopt(result_over(store), "short").key
    service.warm(key)
    assert store.rows_read == 0
