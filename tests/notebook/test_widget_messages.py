"""The notebook widget's Python side: its data requests answered with the web endpoints' binary buffers,
decoded back to exactly what the attention store and the Service give; bad requests get a readable error."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from fake_results import result_over

from visualizeai import notebook
from visualizeai.attention.store import DenseStore
from visualizeai.config import Settings
from visualizeai.errors import MissingExtra
from visualizeai.service import Service
from visualizeai.web import serialize

N, LAYERS, HEADS = 37, 2, 3


@pytest.fixture(scope="module")
def result():
    """Peaked random attention (rows sum to 1) of 37 tokens, 2 layers × 3 heads, held densely."""
    rng = np.random.default_rng(7)
    logits = 4 * rng.standard_normal((LAYERS, HEADS, N, N))
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return result_over(DenseStore(weights.astype(np.float32)), model_id="fake-model", text="x" * N)


@pytest.fixture(scope="module")
def service():
    return Service(Settings(offline=True))


@pytest.fixture(scope="module")
def handler(result, service):
    return notebook.MessageHandler(result, service)


def f16(buffer: bytes, shape) -> np.ndarray:
    return np.frombuffer(buffer, "<f2").reshape(shape)


def test_exact_tile_is_the_store_block(handler, result):
    reply, buffers = handler.handle(
        {"type": "tile", "id": 5, "layer": 1, "head": 2, "rows": [3, 20], "cols": [0, 37], "size": 64}
    )
    assert reply == {
        "type": "tile",
        "id": 5,
        "rows": [3, 20],
        "cols": [0, 37],
        "shape": [17, 37],
        "pooled": False,
        "pool": "mean",
        "dtype": "float16",
    }
    assert len(buffers) == 1 and isinstance(buffers[0], bytes)
    expected = result.attention.block(1, 2, (3, 20), (0, 37))
    np.testing.assert_array_equal(f16(buffers[0], (17, 37)), expected.astype(np.float16))


@pytest.mark.parametrize(("layer", "head", "pool"), [(0, 1, "mean"), (1, None, "max"), (None, None, "mean")])
def test_pooled_tile_equals_the_service_tile(handler, result, service, layer, head, pool):
    reply, buffers = handler.handle(
        {"type": "tile", "id": "a", "layer": layer, "head": head, "rows": [2, 37], "size": 8, "pool": pool}
    )
    assert reply["pooled"] is True and reply["shape"] == [8, 8] and reply["cols"] == [0, N]
    key = service.adopt(result, f"notebook:{id(result)}").key  # the key the handler reads through
    tile = service.tile(key, layer, head, (2, 37), None, 8, pool)
    assert buffers[0] == serialize.tile_payload(tile)[0]  # the tile endpoint's very bytes
    np.testing.assert_array_equal(
        f16(buffers[0], (8, 8)), result.attention.pooled(layer, head, (2, 37), (0, N), 8, pool).astype("f2")
    )


def test_top_keys_are_the_strongest_mean_weights(handler, result):
    request = {"type": "topKeys", "id": 4, "layer": 1, "head": 0, "rows": [5, 9], "k": 3}
    reply, buffers = handler.handle(request)
    mean = result.attention.block(1, 0, (5, 9), (0, N)).astype(np.float64).mean(axis=0)
    assert reply["type"] == "topKeys" and reply["rows"] == [5, 9] and buffers == []
    assert [k["index"] for k in reply["keys"]] == list(np.argsort(-mean, kind="stable")[:3])
    np.testing.assert_allclose([k["weight"] for k in reply["keys"]], np.sort(mean)[::-1][:3], rtol=1e-6)


def test_attention_as_displayed_is_the_endpoint_matrix(handler, result, service):
    request = {"type": "attention", "id": 6, "layer": 1, "agg": "mean_heads", "hideSpecial": True}
    reply, buffers = handler.handle(request)
    key = service.adopt(result, f"notebook:{id(result)}").key
    view = service.attention_view(key, layer=1, head=None, agg="mean_heads", hide_special=True)
    assert reply == {
        "type": "attention",
        "id": 6,
        "shape": [N, N],
        "groups": [[i] for i in range(N)],
        "renormalized": view.renormalized,
        "dtype": "float16",
    }
    assert buffers[0] == serialize.display_payload(view)[0]
    reply, _ = handler.handle({"type": "attention", "id": 7, "agg": "none"})
    assert reply["message"].startswith("layer is required with agg=none")


def test_row_is_exact_float32(handler, result):
    reply, buffers = handler.handle({"type": "row", "id": 1, "layer": 0, "head": None, "row": 36})
    assert reply == {"type": "row", "id": 1, "layer": 0, "head": None, "row": 36, "dtype": "float32"}
    values = np.frombuffer(buffers[0], "<f4")
    np.testing.assert_array_equal(values, result.attention.block(0, None, (36, 37), (0, N))[0])
    assert values.dtype == np.float32 and values.shape == (N,)


def test_thumbnails_of_one_layer_are_the_endpoint_bytes(handler, result, service):
    reply, buffers = handler.handle({"type": "thumbnails", "id": 2, "layer": 1, "size": 16, "pool": "max"})
    maxima = reply.pop("maxima")
    assert reply == {"type": "thumbnails", "id": 2, "layer": 1, "heads": HEADS, "size": 16}
    key = service.adopt(result, f"notebook:{id(result)}").key
    # the all-layers endpoint's bytes and maxima
    every, headers = serialize.thumbnails_payload(service.thumbnails(key, 16, "max"))
    one = HEADS * 16 * 16
    assert buffers[0] == every[one : 2 * one]
    assert maxima == [float(v) for v in headers["X-Maxima"].split(",")[HEADS : 2 * HEADS]]


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"type": "tile", "layer": 2}, "Layer 2 is out of range: this model has layers 0–1."),
        ({"type": "tile", "head": -1}, "Head -1 is out of range: this model has heads 0–2."),
        ({"type": "tile", "rows": [5, 5]}, "rows must be a range a:b of token positions with 0 ≤ a < b ≤ 37"),
        ({"type": "tile", "size": 2000}, "size must be between 1 and 1024; got 2000."),
        ({"type": "tile", "pool": "median"}, "pool must be one of mean, max; got 'median'."),
        ({"type": "tile", "layer": "1"}, "layer must be an integer; got '1'."),
        ({"type": "tile", "cols": 4}, "cols must be a pair [a, b] of token positions; got 4."),
        ({"type": "row", "layer": 0, "head": 0, "row": 37}, "row 37 is out of range: this analysis has 37"),
        ({"type": "row", "layer": 0, "head": 0}, "row needs a query position."),
        ({"type": "thumbnails", "layer": 0, "size": 500}, "size must be between 4 and 128; got 500."),
        ({"type": "thumbnails"}, "thumbnails need a layer."),
        ({"type": "topKeys", "rows": [0, 2], "k": 0}, "k must be between 1 and 256; got 0."),
        ({"type": "topKeys", "rows": [3, 2]}, "rows must be a range a:b of token positions with 0 ≤ a < b"),
        ({"type": "erase"}, "Unknown widget request type 'erase'; expected one of tile, thumbnails, row,"),
    ],
)
def test_bad_requests_get_a_readable_error(handler, request_, message):
    reply, buffers = handler.handle({**request_, "id": 9})
    assert reply["type"] == "error" and reply["id"] == 9 and buffers == []
    assert reply["message"].startswith(message), reply["message"]


def test_an_evicted_result_is_put_back(result):
    service = Service(Settings(offline=True, result_cache_size=1))
    handler = notebook.MessageHandler(result, service)
    handler.handle({"type": "tile", "id": 1, "size": 4})
    key = handler._key
    service.adopt(result_over(DenseStore(np.full((1, 1, 2, 2), 0.5, np.float32))), "other")
    assert service.results.keys() != [key]  # evicted by the other result
    reply, _ = handler.handle({"type": "tile", "id": 2, "size": 4})
    assert reply["type"] == "tile" and service.results.keys() == [key]


def test_widget_state_and_message_round_trip(result, service, monkeypatch):
    w = notebook.show(result, layer=1, head=None, service=service)
    assert w.info["n"] == N and w.info["layers"] == LAYERS and w.info["heads"] == HEADS
    assert w.info["model"]["id"] == "fake-model" and [t["raw"] for t in w.info["tokens"]] == ["x"] * N
    assert (w.layer, w.head, w.pool) == (1, None, "max")
    assert "export" in w._esm and ".vai-widget" in w._css
    # no float lists in the synced state: only the small metadata
    assert all(not isinstance(v, float) for t in w.info["tokens"] for v in t.values())
    sent = []
    monkeypatch.setattr(w, "send", lambda content, buffers=None: sent.append((content, buffers)))
    w._on_request(w, {"type": "tile", "id": 3, "layer": 0, "head": 0, "size": 64}, [])
    ((content, buffers),) = sent
    assert content["type"] == "tile" and content["id"] == 3 and len(buffers[0]) == 2 * N * N
    with pytest.raises(Exception, match="Layer 5 is out of range"):
        w.layer = 5
    with pytest.raises(Exception, match="pool must be 'mean' or 'max'"):
        w.pool = "sum"
    with pytest.raises(TypeError, match="takes an analysis"):
        notebook.show("not an analysis")


def test_missing_bundle_says_how_to_build_it(result, service, monkeypatch, tmp_path):
    monkeypatch.setattr(notebook, "BUNDLE", tmp_path / "widget.js")
    with pytest.raises(FileNotFoundError, match=r"widget\.js is missing: build the front end with `npm ci"):
        notebook.show(result, service=service)


def test_missing_anywidget_names_the_extra(result, service, monkeypatch):
    monkeypatch.setitem(sys.modules, "anywidget", None)  # import anywidget -> ImportError
    notebook.widget_class.cache_clear()
    try:
        with pytest.raises(MissingExtra, match=r"pip install 'visualizeai\[notebook\]'"):
            notebook.show(result, service=service)
    finally:
        notebook.widget_class.cache_clear()


def test_import_visualizeai_does_not_import_anywidget_or_torch():
    code = (
        "import sys, visualizeai; visualizeai.show; "
        "print('anywidget' in sys.modules, 'ipywidgets' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]
