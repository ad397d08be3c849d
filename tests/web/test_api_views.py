"""The attention endpoint's view options (agg, hide_special, merge_words) against the numpy functions."""

from __future__ import annotations

import numpy as np
import pytest

import visualizeai.service
from visualizeai.analysis.transforms import (
    hide_tokens,
    mean_over_heads,
    mean_over_layers,
    merge_subwords,
    quantize_thumbnails,
)

pytestmark = pytest.mark.models

# MiniLM: [CLS] token ##ization isn ' t un ##bel ##ie ##va ##bly hard . [SEP]
TEXT = "Tokenization isn't unbelievably hard."


@pytest.fixture(scope="module")
def result(client, meta):
    return client.app.state.service.result(meta["key"])


def get(client, meta, **params):
    return client.get(f"/api/v1/analyses/{meta['key']}/attention", params=params)


def matrix_of(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    shape = tuple(int(d) for d in response.headers["x-shape"].split(","))
    return np.frombuffer(response.content, dtype="<f2").reshape(shape)


def tokens_of(response) -> list[str]:
    return response.headers["x-tokens"].split(",")


def f16(array) -> np.ndarray:
    return np.asarray(array, dtype=np.float32).astype(np.float16)


def test_plain_head_is_unchanged_and_lists_every_token(client, meta, result):
    response = get(client, meta, layer=2, head=7)
    np.testing.assert_array_equal(matrix_of(response), f16(result.attentions[2, 7]))
    assert tokens_of(response) == [str(i) for i in range(meta["n"])]
    assert response.headers["x-renormalized"] == "false"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"agg": "mean_heads", "layer": 3}, lambda a: mean_over_heads(a)[3]),
        ({"agg": "mean_heads"}, mean_over_heads),
        ({"agg": "mean_layers", "head": 5}, lambda a: mean_over_layers(a)[5]),
        ({"agg": "mean_layers"}, mean_over_layers),
        ({"agg": "mean_all"}, lambda a: mean_over_heads(a).mean(axis=0)),
    ],
)
def test_aggregates_equal_numpy(client, meta, result, params, expected):
    got = matrix_of(get(client, meta, **params))
    want = f16(expected(result.attentions))
    assert got.shape == want.shape
    np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=1e-3, atol=1e-6)


def test_hide_special_renormalises_rows(client, meta, result):
    response = get(client, meta, layer=1, head=4, hide_special=True)
    got = matrix_of(response)
    specials = sum(t["special"] for t in meta["tokens"])
    assert specials == 2 and got.shape == (meta["n"] - 2, meta["n"] - 2)
    expected, kept = hide_tokens(result.attentions[1, 4], result.special_mask)
    np.testing.assert_array_equal(got, f16(expected))
    np.testing.assert_allclose(got.astype(np.float32).sum(axis=1), 1.0, atol=5e-3)
    assert tokens_of(response) == [str(i) for i in kept] and tokens_of(response)[0] == "1"
    assert response.headers["x-renormalized"] == "true"


def test_merge_words_reduces_the_axis_and_names_the_groups(client, meta, result):
    response = get(client, meta, layer=0, merge_words=True)
    got = matrix_of(response)
    expected, groups = merge_subwords(result.attentions[0], result.word_ids)
    assert got.shape == (12, 9, 9) == expected.shape
    np.testing.assert_array_equal(got, f16(expected))
    assert tokens_of(response) == ["0", "1-2", "3", "4", "5", "6-10", "11", "12", "13"]
    assert len(groups) == 9


def test_all_options_together(client, meta, result):
    response = get(client, meta, agg="mean_all", hide_special=True, merge_words=True)
    got = matrix_of(response)
    hidden, kept = hide_tokens(mean_over_heads(result.attentions).mean(axis=0), result.special_mask)
    expected, _ = merge_subwords(hidden, result.word_ids[kept])
    np.testing.assert_allclose(got.astype(np.float32), expected, rtol=1e-3, atol=1e-6)
    assert tokens_of(response) == ["1-2", "3", "4", "5", "6-10", "11", "12"]
    np.testing.assert_allclose(got.astype(np.float32).sum(axis=1), 1.0, atol=5e-3)


@pytest.mark.parametrize(
    ("params", "status", "detail"),
    [
        ({}, 400, "layer is required with agg=none"),
        ({"layer": 6}, 400, "Layer 6 is out of range: this model has layers 0–5"),
        ({"layer": 0, "head": 12}, 400, "Head 12 is out of range"),
        ({"agg": "mean_heads", "layer": 0, "head": 1}, 400, "head cannot be chosen with agg=mean_heads"),
        ({"agg": "mean_all", "layer": 0}, 400, "layer cannot be chosen with agg=mean_all"),
        ({"agg": "median", "layer": 0}, 422, "query.agg: Input should be 'none', 'mean_heads'"),
        ({"layer": 0, "hide_special": "maybe"}, 422, "query.hide_special: Input should be a valid boolean"),
        ({"layer": -1}, 422, "query.layer"),
    ],
)
def test_bad_parameters_get_a_readable_detail(client, meta, params, status, detail):
    response = get(client, meta, **params)
    assert response.status_code == status
    assert detail in response.json()["detail"]


def thumbnails_of(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["x-dtype"] == "uint8"
    shape = tuple(int(d) for d in response.headers["x-shape"].split(","))
    return np.frombuffer(response.content, dtype=np.uint8).reshape(shape)


def test_mean_thumbnails_equal_the_dense_quantisation(client, meta, result):
    got = thumbnails_of(client.get(f"/api/v1/analyses/{meta['key']}/thumbnails", params={"size": 5}))
    want = quantize_thumbnails(result.attentions, 5)  # the dense path: downsample, then scale per head
    assert got.shape == want.shape == (6, 12, 5, 5)
    # pooled through the store, summed in another order: a cell on a .5 boundary may round the other way
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert np.mean(got == want) > 0.99


def test_max_thumbnails_scale_each_heads_block_maxima(client, meta, result):
    n, s = meta["n"], 4
    got = thumbnails_of(
        client.get(f"/api/v1/analyses/{meta['key']}/thumbnails", params={"size": s, "pool": "max"})
    )
    edges = [(i * n) // s for i in range(s + 1)]
    peaks = np.array(
        [
            [
                result.attentions[..., edges[i] : edges[i + 1], edges[j] : edges[j + 1]].max(axis=(-2, -1))
                for j in range(s)
            ]
            for i in range(s)
        ]
    ).transpose(2, 3, 0, 1)  # [layers, heads, s, s]
    want = np.rint(peaks / peaks.max(axis=(-2, -1), keepdims=True) * 255).astype(np.uint8)
    np.testing.assert_array_equal(got, want)


def test_unknown_key_is_404(client):
    response = client.get("/api/v1/analyses/nope/attention", params={"layer": 0, "hide_special": True})
    assert response.status_code == 404 and "run it again" in response.json()["detail"]


def test_switching_views_never_reruns_the_model(client, monkeypatch):
    calls = []
    real = visualizeai.service.analyze_text

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(visualizeai.service, "analyze_text", counting)
    text = "Counting forward passes while switching heads."
    key = client.post("/api/v1/analyze", json={"text": text}).json()["key"]
    assert len(calls) == 1
    for params in (
        {"layer": 0, "head": 0},
        {"layer": 5, "head": 11},
        {"layer": 3},
        {"agg": "mean_all"},
        {"layer": 2, "hide_special": True, "merge_words": True},
        {"agg": "mean_layers", "head": 1},
    ):
        assert client.get(f"/api/v1/analyses/{key}/attention", params=params).status_code == 200
    assert client.get(f"/api/v1/analyses/{key}/thumbnails", params={"size": 8}).status_code == 200
    again = client.post("/api/v1/analyze", json={"text": text}).json()
    assert again["cached"] is True and again["key"] == key
    assert len(calls) == 1


def test_openapi_documents_the_options(client):
    operation = client.get("/openapi.json").json()["paths"]["/api/v1/analyses/{key}/attention"]["get"]
    names = {p["name"]: p for p in operation["parameters"]}
    assert {"layer", "head", "agg", "hide_special", "merge_words"} <= set(names)
    assert names["layer"]["required"] is False
    assert "X-Tokens" in operation["description"] and "renormalis" in operation["description"]
