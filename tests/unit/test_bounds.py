"""Memory bounds: the result cache by count and bytes, the model LRU by count and weight bytes, and one
computation per key when requests race."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from visualizeai.cache import BoundedLRU, KeyedLocks
from visualizeai.config import Settings
from visualizeai.models.catalog import ModelSpec
from visualizeai.models.loading import ModelRegistry, model_bytes


def test_result_cache_evicts_by_bytes():
    cache: BoundedLRU[np.ndarray] = BoundedLRU(max_items=100, max_bytes=1000, size_of=lambda a: a.nbytes)
    for i in range(5):
        assert cache.put(str(i), np.zeros(300, dtype=np.uint8))
    assert len(cache) == 3 and cache.nbytes == 900  # two evicted by bytes, long before the count bound
    assert cache.get("0") is None and cache.get("1") is None and cache.get("4") is not None
    cache.get("2")  # most recently used now
    cache.put("big", np.zeros(500, dtype=np.uint8))
    assert cache.get("2") is not None and cache.get("3") is None and cache.nbytes <= 1000
    assert not cache.put("huge", np.zeros(1001, dtype=np.uint8))  # alone over the bound: not kept
    assert cache.get("huge") is None and cache.nbytes <= 1000


def test_result_cache_evicts_by_count():
    cache: BoundedLRU[bytes] = BoundedLRU(max_items=2, max_bytes=10**6, size_of=len)
    for key in "abc":
        cache.put(key, b"x")
    assert len(cache) == 2 and cache.get("a") is None


def test_keyed_locks_run_one_computation_per_key():
    locks, running, overlaps, done = KeyedLocks(), {"a": 0, "b": 0}, [], []

    def work(key):
        with locks.hold(key):
            running[key] += 1
            overlaps.append(dict(running))
            time.sleep(0.01)
            running[key] -= 1
            done.append(key)

    threads = [threading.Thread(target=work, args=(k,)) for k in "abababab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(done) == 8 and all(v <= 1 for snapshot in overlaps for v in snapshot.values())
    assert any(snapshot == {"a": 1, "b": 1} for snapshot in overlaps)  # different keys ran side by side
    assert len(locks) == 0  # nothing left behind


class FakeLoaded:
    """Stands in for a LoadedModel: only ``model`` matters to the registry's byte count."""

    def __init__(self, floats: int):
        self.model = torch.nn.Linear(floats, 1, bias=False)  # floats × 4 bytes of weights


def test_model_bytes_counts_weights_once():
    loaded = FakeLoaded(1000)
    assert model_bytes(loaded) == 4000
    tied = torch.nn.Sequential(torch.nn.Embedding(10, 8), torch.nn.Linear(8, 10, bias=False))
    tied[1].weight = tied[0].weight
    loaded.model = tied
    assert model_bytes(loaded) == 10 * 8 * 4
    assert model_bytes(object()) == 0


def test_model_cache_evicts_by_weight_bytes():
    sizes = {"a": 1000, "b": 1000, "c": 3000}
    registry = ModelRegistry(10, loader=lambda spec: FakeLoaded(sizes[spec.id]), max_bytes=9000)
    for name in "ab":
        registry.get(ModelSpec(id=name, source="hub", location=name))
    assert registry.loaded_ids() == ["a", "b"] and registry.nbytes == 8000
    registry.get(ModelSpec(id="c", source="hub", location="c"))  # 12,000 bytes: alone over the bound
    assert registry.loaded_ids() == ["c"] and registry.nbytes == 12000  # the newest always stays
    assert registry.load_count == 3


def test_model_cache_evicts_by_count():
    registry = ModelRegistry(2, loader=lambda spec: FakeLoaded(1))
    for name in "abc":
        registry.get(ModelSpec(id=name, source="hub", location=name))
    assert registry.loaded_ids() == ["b", "c"]


@pytest.mark.parametrize(
    ("variable", "field", "value"),
    [
        ("MODEL_CACHE_SIZE", "model_cache_size", 3),
        ("MODEL_CACHE_BYTES", "model_cache_bytes", 123_456),
        ("RESULT_CACHE_SIZE", "result_cache_size", 7),
        ("RESULT_CACHE_BYTES", "result_cache_bytes", 99_000),
        ("MAX_TEXT_CHARS", "max_text_chars", 500),
        ("MAX_BODY_BYTES", "max_body_bytes", 4096),
    ],
)
def test_bounds_are_configurable_from_the_environment(monkeypatch, variable, field, value):
    monkeypatch.setenv("VISUALIZEAI_" + variable, str(value))
    assert getattr(Settings.from_env(), field) == value
