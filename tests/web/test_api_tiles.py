"""GET /analyses/{key}/tile: exact blocks and pooled pictures read through the attention store, and
/attention's refusal of matrices too large to send whole."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from fake_results import result_over
from transformers import AutoModel, AutoTokenizer

from visualizeai.attention.store import AttentionStore

pytestmark = pytest.mark.models

# MiniLM: 17 tokens, [CLS] … [SEP]
TEXT = "The quick brown fox jumps over the lazy dog near the quiet riverbank."


@pytest.fixture(scope="module")
def result(client, meta):
    return client.app.state.service.result(meta["key"])


@pytest.fixture(scope="module")
def eager(minilm_path) -> np.ndarray:
    """float32 ``[layers, heads, n, n]`` of transformers' own eager attention for ``TEXT``."""
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    model = AutoModel.from_pretrained(minilm_path, attn_implementation="eager").eval()
    enc = tokenizer(TEXT, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc, output_attentions=True)
    return torch.stack(out.attentions)[:, 0].numpy()


def get(client, key, **params):
    return client.get(f"/api/v1/analyses/{key}/tile", params=params)


def tile_of(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-dtype"] == "float16"
    shape = tuple(int(d) for d in response.headers["x-shape"].split(","))
    return np.frombuffer(response.content, dtype="<f2").reshape(shape)


def f16(array) -> np.ndarray:
    return np.asarray(array, dtype=np.float32).astype(np.float16)


def edges(a: int, b: int, bins: int) -> list[int]:
    """The documented bin starts: a + ⌊i(b−a)/bins⌋ for i = 0 … bins."""
    return [a + (i * (b - a)) // bins for i in range(bins + 1)]


def numpy_pool(matrix: np.ndarray, rows, cols, size: int, pool: str) -> np.ndarray:
    """Mean or max of ``matrix[rows, cols]`` over the documented bins, cell by cell."""
    (a, b), (c, d) = rows, cols
    r, k = min(size, b - a), min(size, d - c)
    re, ce = edges(a, b, r), edges(c, d, k)
    reduce = np.max if pool == "max" else np.mean
    out = np.empty((r, k), dtype=np.float64)
    for i in range(r):
        for j in range(k):
            out[i, j] = reduce(matrix[re[i] : re[i + 1], ce[j] : ce[j + 1]].astype(np.float64))
    return out


def test_text_is_long_enough_to_pool(meta):
    assert meta["n"] == 17 and (meta["layers"], meta["heads"]) == (6, 12)


def test_exact_tile_equals_the_store_block(client, meta, result):
    response = get(client, meta["key"], layer=3, head=5, rows="2:9", cols="1:12", size=16)
    got = tile_of(response)
    assert response.headers["x-shape"] == "7,11" and got.shape == (7, 11)
    assert response.headers["x-exact"] == "true" and response.headers["x-pool"] == "mean"
    assert response.headers["x-rows"] == "2:9" and response.headers["x-cols"] == "1:12"
    np.testing.assert_array_equal(got, f16(result.attention.block(3, 5, (2, 9), (1, 12))))


@pytest.mark.parametrize(("layer", "head"), [(0, 0), (2, 7), (5, 11)])
def test_exact_tile_equals_eager_transformers(client, meta, eager, layer, head):
    n = meta["n"]
    assert eager.shape == (6, 12, n, n)
    got = tile_of(get(client, meta["key"], layer=layer, head=head))  # whole matrix, size 256 > n
    assert got.shape == (n, n)
    # float16 keeps 11 significant bits: relative error ≤ 2⁻¹¹ (absolute ≤ 2⁻²⁵ below 2⁻¹⁴)
    np.testing.assert_allclose(got.astype(np.float32), eager[layer, head], rtol=2**-10, atol=1e-7)
    np.testing.assert_allclose(got.astype(np.float32).sum(-1), 1.0, atol=5e-3)


@pytest.mark.parametrize("pool", ["mean", "max"])
@pytest.mark.parametrize(
    ("rows", "cols", "size", "shape"),
    [
        ("0:17", "0:17", 4, (4, 4)),  # bins of 4 or 5
        ("1:16", "3:10", 5, (5, 5)),  # 15 rows into 5 bins of 3, 7 columns into 5 bins of 1 or 2
        ("4:7", "0:17", 6, (3, 6)),  # rows fit, columns pooled: not exact
        ("0:17", "16:17", 2, (2, 1)),  # one key column
    ],
)
def test_pooled_tile_equals_numpy_over_the_documented_bins(
    client, meta, eager, rows, cols, size, shape, pool
):
    response = get(client, meta["key"], layer=1, head=3, rows=rows, cols=cols, size=size, pool=pool)
    got = tile_of(response)
    assert got.shape == shape and response.headers["x-shape"] == f"{shape[0]},{shape[1]}"
    assert response.headers["x-exact"] == "false" and response.headers["x-pool"] == pool
    span = [tuple(int(v) for v in s.split(":")) for s in (rows, cols)]
    expected = numpy_pool(eager[1, 3], *span, size, pool)
    np.testing.assert_allclose(got.astype(np.float32), expected, rtol=2**-10, atol=1e-7)


def test_mean_and_max_differ_where_bins_hold_several_cells(client, meta):
    mean = tile_of(get(client, meta["key"], layer=0, head=0, size=4, pool="mean"))
    peak = tile_of(get(client, meta["key"], layer=0, head=0, size=4, pool="max"))
    assert (peak >= mean).all() and (peak > mean).any()


def test_without_head_the_tile_is_the_layers_mean_over_heads(client, meta, eager):
    response = get(client, meta["key"], layer=4)
    assert response.headers["x-exact"] == "true"
    np.testing.assert_allclose(tile_of(response).astype(np.float32), eager[4].mean(0), rtol=2**-10, atol=1e-7)
    pooled = tile_of(get(client, meta["key"], layer=4, rows="0:17", cols="2:15", size=3, pool="max"))
    expected = numpy_pool(eager[4].mean(0), (0, 17), (2, 15), 3, "max")
    np.testing.assert_allclose(pooled.astype(np.float32), expected, rtol=2**-10, atol=1e-7)


def test_without_layer_and_head_the_tile_is_the_model_mean(client, meta, eager):
    response = get(client, meta["key"])  # every default: all rows and columns, size 256, mean
    assert response.headers["x-rows"] == "0:17" and response.headers["x-cols"] == "0:17"
    assert response.headers["x-exact"] == "true" and response.headers["x-pool"] == "mean"
    np.testing.assert_allclose(
        tile_of(response).astype(np.float32), eager.mean(axis=(0, 1)), rtol=2**-10, atol=1e-7
    )


N_RANGE = "0 ≤ a < b ≤ 17 (this analysis has 17 tokens)"


@pytest.mark.parametrize(
    ("params", "status", "detail"),
    [
        ({"rows": "5"}, 400, f"rows must be a range a:b of token positions with {N_RANGE}; got '5'"),
        ({"rows": "a:b"}, 400, f"rows must be a range a:b of token positions with {N_RANGE}; got 'a:b'"),
        ({"rows": "9:3"}, 400, f"with {N_RANGE}; got '9:3'"),
        ({"rows": "3:3"}, 400, f"with {N_RANGE}; got '3:3'"),
        ({"rows": "0:18"}, 400, f"with {N_RANGE}; got '0:18'"),
        ({"rows": "-1:4"}, 400, f"with {N_RANGE}; got '-1:4'"),
        ({"rows": "1:2:3"}, 400, f"with {N_RANGE}; got '1:2:3'"),
        ({"rows": ""}, 400, f"with {N_RANGE}; got ''"),
        ({"rows": "0:99999999999999999999"}, 400, f"with {N_RANGE}"),
        ({"cols": "4:2"}, 400, f"cols must be a range a:b of token positions with {N_RANGE}; got '4:2'"),
        ({"cols": "0:17.5"}, 400, f"cols must be a range a:b of token positions with {N_RANGE}"),
        ({"layer": 6}, 400, "Layer 6 is out of range: this model has layers 0–5."),
        ({"layer": -1}, 400, "Layer -1 is out of range: this model has layers 0–5."),
        ({"layer": 10**30}, 400, "is out of range: this model has layers 0–5."),
        ({"layer": 0, "head": 12}, 400, "Head 12 is out of range: this model has heads 0–11."),
        ({"head": -3}, 400, "Head -3 is out of range: this model has heads 0–11."),
        ({"layer": "one"}, 422, "query.layer: Input should be a valid integer"),
        ({"size": 0}, 422, "query.size: Input should be greater than or equal to 1"),
        ({"size": 1025}, 422, "query.size: Input should be less than or equal to 1024"),
        ({"size": "big"}, 422, "query.size: Input should be a valid integer"),
        ({"pool": "median"}, 422, "query.pool: Input should be 'mean' or 'max'"),
    ],
)
def test_bad_parameters_get_a_specific_4xx(client, meta, params, status, detail):
    response = get(client, meta["key"], **params)
    assert response.status_code == status, response.text
    assert detail in response.json()["detail"]


def test_unknown_key_is_404(client):
    response = get(client, "0123abcd", layer=0, head=0)
    assert response.status_code == 404 and "run it again" in response.json()["detail"]


def test_openapi_documents_the_tile(client):
    operation = client.get("/openapi.json").json()["paths"]["/api/v1/analyses/{key}/tile"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {
        "key",
        "layer",
        "head",
        "rows",
        "cols",
        "size",
        "pool",
    }
    assert "⌊i(b−a)/r⌋" in operation["description"] and "X-Exact" in operation["description"]


# ---- an analysis too long to send whole --------------------------------------------------------------------


class UniformStore(AttentionStore):
    """``layers × heads`` heads of ``n`` tokens that attend evenly everywhere, computed a chunk at a time,
    so a long analysis costs no memory until a block is read."""

    def __init__(self, layers: int, heads: int, n: int):
        self.layers, self.heads, self.n = layers, heads, n
        self.rows_read = 0

    @property
    def nbytes(self) -> int:
        return 0

    def _chunks(self, layer, heads, rows, cols) -> Iterator[tuple[int, torch.Tensor]]:
        step = 256
        for start in range(rows[0], rows[1], step):
            stop = min(rows[1], start + step)
            self.rows_read += stop - start
            yield start, torch.full((len(heads), stop - start, cols[1] - cols[0]), 1 / self.n)


@pytest.fixture(scope="module")
def long_key(client):
    """A 20,000-token analysis (a single head: 1.6 GB of float32), adopted into the result cache."""
    n = 20_000
    store = UniformStore(2, 3, n)
    result = result_over(store, model_id="uniform")
    return client.app.state.service.adopt(result, "uniform-20000").key, store


@pytest.mark.parametrize(
    ("params", "need"),
    [
        ({"layer": 0, "head": 1}, "1,600,000,000 bytes (1 × 20,000 × 20,000 float32)"),
        ({"layer": 1}, "4,800,000,000 bytes (3 × 20,000 × 20,000 float32)"),
        ({"agg": "mean_all"}, "1,600,000,000 bytes"),
        ({"agg": "mean_heads"}, "3,200,000,000 bytes (2 × 20,000 × 20,000 float32)"),
    ],
)
def test_attention_too_large_to_send_whole_is_refused_with_the_figures(client, long_key, params, need):
    key, store = long_key
    before = store.rows_read
    response = client.get(f"/api/v1/analyses/{key}/attention", params=params)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert need in detail and "more than the limit of 1,073,741,824 bytes" in detail
    assert f"/api/v1/analyses/{key}/tile" in detail
    assert store.rows_read == before  # refused before reading a single row


def test_tiles_of_the_long_analysis_are_served(client, long_key):
    key, _ = long_key
    exact = tile_of(get(client, key, layer=1, head=2, rows="19990:20000", cols="0:1024", size=1024))
    assert exact.shape == (10, 1024)
    np.testing.assert_array_equal(exact, np.float16(1 / 20_000))
    pooled = get(client, key, layer=0, rows="0:3000", cols="0:20000", size=8, pool="max")
    assert pooled.headers["x-exact"] == "false" and pooled.headers["x-shape"] == "8,8"
    np.testing.assert_array_equal(tile_of(pooled), np.float16(1 / 20_000))
