"""Endpoints for long contexts: one exact query row (GET /row), the top keys of a range of query rows
(GET /top-keys) and one layer's thumbnails (GET /thumbnails?layer=L), compared value by value with the
attention store and with transformers' own eager attention; their edges (ranges, k, expired keys, the work
budget). At length (``scale``): a 16k-token analysis of a random Qwen2-shaped model, where rollout and head
statistics are refused with the figures and the row, top-keys and per-layer thumbnail endpoints still answer;
and generation from a 4k-token prompt, whose first step reads the same attention as the prompt's analysis.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from tiny_models import widen_context
from transformers import AutoModelForCausalLM, AutoTokenizer

from visualizeai.config import Settings
from visualizeai.web import create_app

pytestmark = pytest.mark.models

SENTENCE = "The quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat. "
TEXT = SENTENCE * 8  # about 150 tokens for the tiny BPE: held as captured queries and keys


def widened(tiny_models, tmp_path_factory, family: str, context: int):
    """A copy of a tiny decoder whose context is ``context`` positions (RoPE: the weights are unchanged)."""
    return widen_context(tiny_models[family], tmp_path_factory.mktemp(f"{family}{context}") / family, context)


def app_for(path, **settings) -> TestClient:
    return TestClient(create_app(Settings(allowed_roots=(path.parent,), offline=True, **settings)))


@pytest.fixture(scope="module")
def qwen(tiny_models):
    return tiny_models["qwen2"]


@pytest.fixture(scope="module")
def client(qwen):
    with app_for(qwen) as c:
        yield c


@pytest.fixture(scope="module")
def meta(client, qwen):
    response = client.post("/api/v1/analyze", json={"text": TEXT, "model": str(qwen)})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def store(client, meta):
    return client.app.state.service.result(meta["key"]).attention


@pytest.fixture(scope="module")
def eager(qwen, meta) -> np.ndarray:
    """float32 ``[layers, heads, n, n]``: transformers' eager attention of the same tokens."""
    tokenizer = AutoTokenizer.from_pretrained(qwen)
    model = AutoModelForCausalLM.from_pretrained(qwen, attn_implementation="eager").eval()
    ids = tokenizer(TEXT, return_tensors="pt")["input_ids"]
    assert ids.shape[1] == meta["n"]
    with torch.no_grad():
        out = model(input_ids=ids, output_attentions=True)
    return torch.stack(out.attentions)[:, 0].float().numpy()


def f16(array) -> np.ndarray:
    return np.asarray(array, dtype=np.float32).astype(np.float16)


def binary(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    dtype = {"float16": "<f2", "uint8": "u1"}[response.headers["x-dtype"]]
    shape = tuple(int(d) for d in response.headers["x-shape"].split(","))
    return np.frombuffer(response.content, dtype=dtype).reshape(shape)


def get_row(client, key, **params):
    return client.get(f"/api/v1/analyses/{key}/row", params=params)


def get_top(client, key, **params):
    return client.get(f"/api/v1/analyses/{key}/top-keys", params=params)


def test_the_analysis_is_captured(meta):
    assert meta["attention_mode"] == "captured" and 100 < meta["n"] < 256
    assert (meta["layers"], meta["heads"]) == (2, 4)


# ---- GET /row ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("layer", "head"), [(1, 2), (0, 0), (1, None), (None, None), (None, 3)])
def test_a_row_is_exact(client, meta, store, eager, layer, head):
    n, row = meta["n"], meta["n"] - 7
    params = (
        {"row": row} | ({} if layer is None else {"layer": layer}) | ({} if head is None else {"head": head})
    )
    response = get_row(client, meta["key"], **params)
    got = binary(response)
    assert got.shape == (n,) and response.headers["x-row"] == str(row)
    # bit for bit what the store computes, and transformers' weights to float16's rounding
    np.testing.assert_array_equal(got, f16(store.block(layer, head, (row, row + 1))[0]))
    layers = slice(None) if layer is None else slice(layer, layer + 1)
    heads = slice(None) if head is None else slice(head, head + 1)
    reference = eager[layers, heads, row].reshape(-1, n).mean(axis=0)
    np.testing.assert_allclose(got.astype(np.float32), reference, atol=2e-3, rtol=2e-3)
    assert not got[row + 1 :].any()  # causal: no weight on later tokens


def test_every_head_of_a_layer_in_one_row(client, meta, eager):
    got = binary(get_row(client, meta["key"], layer=1, row=40, per_head="true"))
    assert got.shape == (meta["heads"], meta["n"])
    np.testing.assert_allclose(got.astype(np.float32), eager[1, :, 40], atol=2e-3, rtol=2e-3)


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"row": "{n}"}, 400, "row {n} is out of range: this analysis has {n} tokens (rows 0–{last})"),
        ({"row": -1}, 400, "row -1 is out of range"),
        ({"row": "x"}, 422, "query.row"),
        ({}, 422, "query.row is required"),
        ({"row": 0, "layer": 2}, 400, "Layer 2 is out of range"),
        ({"row": 0, "layer": 0, "head": 4}, 400, "Head 4 is out of range"),
        ({"row": 0, "per_head": "true"}, 400, "give a layer and leave head out"),
        ({"row": 0, "layer": 0, "head": 1, "per_head": "true"}, 400, "leave head out"),
    ],
)
def test_row_edges(client, meta, params, status, fragment):
    n = meta["n"]
    params = {k: v.format(n=n) if isinstance(v, str) else v for k, v in params.items()}
    response = get_row(client, meta["key"], **params)
    assert response.status_code == status, response.text
    assert fragment.format(n=n, last=n - 1) in response.json()["detail"]


# ---- GET /top-keys -----------------------------------------------------------------------------------------


def reference_top(weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest of a float64 vector, ties by lower index: (indices, values)."""
    order = sorted(range(len(weights)), key=lambda i: (-weights[i], i))[:k]
    return np.array(order), weights[order]


@pytest.mark.parametrize(
    ("layer", "head", "rows", "k"), [(1, 2, (30, 90), 10), (0, None, (0, 1), 5), (None, None, (5, 150), 32)]
)
def test_top_keys_are_the_exact_mean_over_the_rows(client, meta, store, eager, layer, head, rows, k):
    a, b = rows
    params = {"rows": f"{a}:{b}", "k": k} | ({} if layer is None else {"layer": layer})
    params |= {} if head is None else {"head": head}
    response = get_top(client, meta["key"], **params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (
        body["rows"] == [a, b] and body["layer"] == layer and body["head"] == head and body["n"] == meta["n"]
    )
    got_index = np.array([e["index"] for e in body["keys"]])
    got_weight = np.array([e["weight"] for e in body["keys"]])
    # the store's exact weights averaged in float64: the same keys, the same values
    mean = store.block(layer, head, (a, b)).astype(np.float64).mean(axis=0)
    index, weight = reference_top(mean, k)
    np.testing.assert_array_equal(got_index, index)
    np.testing.assert_allclose(got_weight, weight, rtol=1e-12, atol=1e-15)
    # and transformers' eager attention says the same
    layers = slice(None) if layer is None else slice(layer, layer + 1)
    heads = slice(None) if head is None else slice(head, head + 1)
    dense = eager[layers, heads, a:b].astype(np.float64).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(got_weight, dense[got_index], atol=1e-5)
    assert np.all(np.diff(got_weight) <= 0)


def test_top_keys_read_in_row_chunks_are_the_same(client, meta, monkeypatch):
    whole = get_top(client, meta["key"], layer=0, rows="3:140", k=20).json()
    monkeypatch.setattr("visualizeai.service.CHUNK_ELEMENTS", 5 * meta["n"])  # 5 rows a chunk: 28 chunks
    chunked = get_top(client, meta["key"], layer=0, rows="3:140", k=20).json()
    assert [e["index"] for e in chunked["keys"]] == [e["index"] for e in whole["keys"]]
    np.testing.assert_allclose([e["weight"] for e in chunked["keys"]], [e["weight"] for e in whole["keys"]])


def test_top_keys_beyond_n_return_every_key(client, meta):
    body = get_top(client, meta["key"], layer=1, head=0, rows="20:21", k=256).json()
    assert len(body["keys"]) == meta["n"]
    assert sorted(e["index"] for e in body["keys"]) == list(range(meta["n"]))
    assert sum(e["weight"] for e in body["keys"]) == pytest.approx(1.0, abs=1e-5)  # a row sums to 1
    assert all(e["weight"] == 0 for e in body["keys"][21:])  # causal: keys after row 20 get nothing


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"rows": "90:30"}, 400, "rows must be a range a:b of token positions with 0 ≤ a < b ≤ {n}"),
        ({"rows": "5:5"}, 400, "rows must be a range a:b"),
        ({"rows": "0:{over}"}, 400, "this analysis has {n} tokens"),
        ({"rows": "-1:4"}, 400, "rows must be a range a:b"),
        ({"rows": "abc"}, 400, "got 'abc'"),
        ({}, 422, "query.rows is required"),
        ({"rows": "0:4", "k": 257}, 400, "k must be between 1 and 256; got 257"),
        ({"rows": "0:4", "k": 0}, 400, "k must be between 1 and 256; got 0"),
        ({"rows": "0:4", "layer": 0, "head": 9}, 400, "Head 9 is out of range"),
    ],
)
def test_top_keys_edges(client, meta, params, status, fragment):
    n = meta["n"]
    params = {k: v.format(n=n, over=n + 1) if isinstance(v, str) else v for k, v in params.items()}
    response = get_top(client, meta["key"], **params)
    assert response.status_code == status, response.text
    assert fragment.format(n=n) in response.json()["detail"]


def test_top_keys_over_the_work_budget_name_the_figures(qwen):
    with app_for(qwen, work_budget=10_000) as c:
        key = c.post("/api/v1/analyze", json={"text": TEXT, "model": str(qwen)}).json()["key"]
        n = c.app.state.service.result(key).n
        response = get_top(c, key, rows=f"0:{n}")
        assert response.status_code == 400
        detail = response.json()["detail"]
        assert (
            f"The top keys of rows 0:{n}" in detail and f"8 head(s) averaged × {n} rows × {n} keys" in detail
        )
        assert "over the work budget of 10,000 (VISUALIZEAI_WORK_BUDGET)" in detail
        assert get_top(c, key, layer=0, head=0, rows="0:2").status_code == 200  # a small range still fits


# ---- GET /thumbnails?layer ---------------------------------------------------------------------------------


def test_one_layers_thumbnails_are_a_slice_of_all(client, meta):
    key = meta["key"]
    for pool in ("mean", "max"):
        every = binary(client.get(f"/api/v1/analyses/{key}/thumbnails", params={"size": 32, "pool": pool}))
        assert every.shape == (2, 4, 32, 32)
        for layer in range(2):
            response = client.get(
                f"/api/v1/analyses/{key}/thumbnails", params={"size": 32, "pool": pool, "layer": layer}
            )
            one = binary(response)
            assert one.shape == (4, 32, 32) and response.headers["x-layer"] == str(layer)
            np.testing.assert_array_equal(one, every[layer])
    bad = client.get(f"/api/v1/analyses/{key}/thumbnails", params={"layer": 2})
    assert bad.status_code == 400 and "Layer 2 is out of range" in bad.json()["detail"]


def test_one_layers_thumbnails_are_computed_from_the_store(client, meta, store):
    response = client.get(f"/api/v1/analyses/{meta['key']}/thumbnails", params={"size": 16, "layer": 1})
    one = binary(response)
    pooled = store.pooled_heads(1, size=16, pool="mean")
    scaled = np.round(255 * pooled / pooled.max(axis=(1, 2), keepdims=True))
    np.testing.assert_array_equal(one, scaled.astype(np.uint8))
    # X-Maxima: what 255 stands for in each thumbnail, so a page can share a layer's scale
    maxima = np.array(response.headers["x-maxima"].split(","), dtype=np.float32)
    np.testing.assert_array_equal(maxima, pooled.max(axis=(1, 2)).astype(np.float32))


def test_max_pooled_thumbnail_maxima_are_each_heads_largest_weight(client, meta, store):
    response = client.get(f"/api/v1/analyses/{meta['key']}/thumbnails", params={"size": 8, "pool": "max"})
    maxima = np.array(response.headers["x-maxima"].split(","), dtype=np.float32).reshape(2, 4)
    dense = store.dense()
    for layer in range(2):
        for head in range(4):
            assert maxima[layer, head] == np.float32(dense[layer, head].max())


@pytest.mark.parametrize(
    ("path", "params"),
    [("row", {"row": 0}), ("top-keys", {"rows": "0:1"}), ("thumbnails", {"layer": 0})],
)
def test_an_expired_key_is_404(client, path, params):
    response = client.get(f"/api/v1/analyses/{'e' * 32}/{path}", params=params)
    assert response.status_code == 404 and "unknown or has expired" in response.json()["detail"]


# ---- at length ---------------------------------------------------------------------------------------------

LONG = 16_384


@pytest.fixture(scope="module")
def long_client(tiny_models, tmp_path_factory):
    path = widened(tiny_models, tmp_path_factory, "qwen2", LONG)
    with app_for(path) as c:
        c.long_model = str(path)
        yield c


@pytest.fixture(scope="module")
def long_meta(long_client):
    text = SENTENCE * (200_000 // len(SENTENCE))
    response = long_client.post("/api/v1/analyze", json={"text": text, "model": long_client.long_model})
    assert response.status_code == 200, response.text
    meta = response.json()
    assert meta["n"] == LONG and meta["attention_mode"] == "captured"
    return meta


@pytest.mark.scale
@pytest.mark.parametrize(
    ("path", "fragments"),
    [
        (
            "rollout",
            ["Rollout of this analysis costs 8.8e12 operations", "2 layers × 16,384² tokens × (4 heads"],
        ),
        (
            "head-stats",
            ["Head statistics of this analysis costs 1.7e10", "2 layers × 4 heads × 16,384² tokens"],
        ),
        ("flow", ["Attention flow would take too long here", "16,384 tokens through 2 layers"]),
    ],
)
def test_whole_model_views_at_16k_refuse_with_the_figures(long_client, long_meta, path, fragments):
    response = long_client.get(f"/api/v1/analyses/{long_meta['key']}/{path}")
    assert response.status_code == 400, response.text[:300]
    detail = response.json()["detail"]
    for fragment in fragments:
        assert fragment in detail, detail
    assert "over the work budget of 4e9 (VISUALIZEAI_WORK_BUDGET)" in detail or "work budget of 4e9" in detail


@pytest.mark.scale
def test_exports_at_16k_refuse_with_413(long_client, long_meta):
    response = long_client.get(f"/api/v1/analyses/{long_meta['key']}/export", params={"format": "npz"})
    detail = response.json()["detail"]
    assert response.status_code == 413 and "The NPZ export of this analysis costs 8.9e12" in detail
    assert "2,147,483,648 attention values" in detail  # 2 × 4 × 16,384²


@pytest.mark.scale
def test_rows_top_keys_and_thumbnails_at_16k(long_client, long_meta):
    key, n = long_meta["key"], LONG
    store = long_client.app.state.service.result(key).attention
    row = binary(get_row(long_client, key, layer=1, head=3, row=n - 1))
    np.testing.assert_array_equal(row, f16(store.block(1, 3, (n - 1, n))[0]))
    body = get_top(long_client, key, layer=1, rows=f"{n - 300}:{n}", k=64).json()
    mean = store.block(1, None, (n - 300, n)).astype(np.float64).mean(axis=0)
    index, weight = reference_top(mean, 64)
    assert [e["index"] for e in body["keys"]] == index.tolist()
    np.testing.assert_allclose([e["weight"] for e in body["keys"]], weight, rtol=1e-12)
    thumbs = binary(long_client.get(f"/api/v1/analyses/{key}/thumbnails", params={"layer": 0, "size": 64}))
    assert thumbs.shape == (4, 64, 64) and np.all(thumbs.reshape(4, -1).max(axis=1) == 255)


# ---- generation from a long prompt -------------------------------------------------------------------------

PROMPT_TOKENS = 4_096


def events(response) -> list[tuple[str, dict]]:
    out = []
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        name = next(line[7:] for line in block.split("\n") if line.startswith("event: "))
        data = next(line[6:] for line in block.split("\n") if line.startswith("data: "))
        out.append((name, json.loads(data)))
    return out


@pytest.mark.slow
def test_generation_from_a_4k_token_prompt(tiny_models, tmp_path_factory):
    path = widened(tiny_models, tmp_path_factory, "llama", 2 * PROMPT_TOKENS)
    tokenizer = AutoTokenizer.from_pretrained(path)
    ids = tokenizer(SENTENCE * 400)["input_ids"][:PROMPT_TOKENS]
    prompt = tokenizer.decode(ids, skip_special_tokens=True)
    with app_for(path) as c:
        response = c.post("/api/v1/generate", json={"text": prompt, "model": str(path), "max_new_tokens": 3})
        assert response.status_code == 200, response.text[:300]
        got = events(response)
        assert [name for name, _ in got] == ["start", "token", "token", "token", "done"], got[-1]
        start, first = got[0][1], got[1][1]
        t = len(start["prompt_tokens"])
        assert PROMPT_TOKENS - 8 <= t <= PROMPT_TOKENS + 8
        attention = first["attention"]
        assert attention["shape"] == [2, 4, t]
        step0 = np.frombuffer(base64.b64decode(attention["data"]), dtype="<f2").reshape(2, 4, t)
        # the first step's attention is the prompt's last row: the same as the analysis of the prompt reads
        meta = c.post("/api/v1/analyze", json={"text": prompt, "model": str(path)}).json()
        assert meta["n"] == t
        for layer in range(2):
            row = binary(get_row(c, meta["key"], layer=layer, row=t - 1, per_head="true"))
            np.testing.assert_allclose(step0[layer].astype(np.float32), row.astype(np.float32), atol=2e-3)
        assert got[-1][1]["steps"] == 3
