"""GET /analyses/{key}/qk-map and /neuron: a head's vectors through the API equal what the store recorded,
and the neuron view's logits give back the exact weights."""

from __future__ import annotations

import io

import numpy as np
import pytest

from visualizeai.analysis import vectors

pytestmark = pytest.mark.models

# MiniLM: 17 tokens, [CLS] … [SEP]
TEXT = "The quick brown fox jumps over the lazy dog near the quiet riverbank."


@pytest.fixture(scope="module")
def store(client, meta):
    return client.app.state.service.result(meta["key"]).attention


def test_qk_map_equals_the_analysis_module(client, meta, store):
    response = client.get(f"/api/v1/analyses/{meta['key']}/qk-map", params={"layer": 2, "head": 5})
    assert response.status_code == 200, response.text
    got = response.json()
    expected = vectors.qk_map(vectors.head_vectors(store, 2, 5))
    assert got["method"] == "pca" and got["translated"] is True
    assert got["positions"] == list(range(meta["n"]))
    np.testing.assert_allclose(got["queries"], expected["queries"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(got["keys"], expected["keys"], rtol=0, atol=1e-6)
    assert 0 < got["explained"][1] <= got["explained"][0] < 1


def test_qk_map_samples_long_texts(client, meta):
    got = client.get(
        f"/api/v1/analyses/{meta['key']}/qk-map", params={"layer": 0, "head": 0, "max_points": 5}
    ).json()
    assert got["positions"][0] == 0 and got["positions"][-1] == meta["n"] - 1
    assert len(got["positions"]) == len(got["queries"]) == len(got["keys"]) == 5


def test_neuron_explains_the_exact_weights(client, meta, store):
    n = meta["n"]
    every = ",".join(str(i) for i in range(n))
    response = client.get(
        f"/api/v1/analyses/{meta['key']}/neuron", params={"layer": 3, "head": 7, "query": 4, "keys": every}
    )
    assert response.status_code == 200, response.text
    got = response.json()
    weights = store.block(3, 7, (4, 5))[0]
    assert [k["index"] for k in got["keys"]] == list(range(n))
    np.testing.assert_allclose([k["weight"] for k in got["keys"]], weights, rtol=0, atol=1e-7)
    q = np.array(got["query"])
    for k in got["keys"]:
        np.testing.assert_allclose(k["products"], q * np.array(k["vector"]), rtol=1e-6, atol=1e-7)
    logits = np.array([k["logit"] for k in got["keys"]])
    np.testing.assert_allclose(
        logits, np.array([sum(k["products"]) for k in got["keys"]]) * got["scaling"], rtol=1e-4, atol=1e-5
    )
    softmax = np.exp(logits - logits.max())
    np.testing.assert_allclose(softmax / softmax.sum(), weights, atol=1e-6)


def test_neuron_default_keys_are_a_window_and_the_strongest(client, meta, store):
    got = client.get(
        f"/api/v1/analyses/{meta['key']}/neuron", params={"layer": 0, "head": 1, "query": 0}
    ).json()
    weights = store.block(0, 1, (0, 1))[0]
    indices = [k["index"] for k in got["keys"]]
    assert set(range(9)) <= set(indices)
    assert set(np.argsort(-weights, kind="stable")[:8].tolist()) <= set(indices)
    assert indices == sorted(indices)


@pytest.mark.parametrize(
    ("path", "params", "status", "detail"),
    [
        ("qk-map", {"layer": 6, "head": 0}, 400, "layer"),
        ("qk-map", {"layer": 0, "head": 12}, 400, "head"),
        ("qk-map", {"layer": 0, "head": 0, "max_points": 1}, 422, ""),
        ("neuron", {"layer": 0, "head": 0, "query": 17}, 400, "outside"),
        ("neuron", {"layer": 0, "head": 0, "query": 1, "keys": "1,x"}, 400, "comma-separated"),
        ("neuron", {"layer": 0, "head": 0, "query": 1, "keys": "99"}, 400, "key positions"),
        ("neuron", {"layer": 0, "head": 0, "query": 1, "keys": ""}, 400, "between 1 and"),
    ],
)
def test_bad_parameters_get_a_specific_4xx(client, meta, path, params, status, detail):
    response = client.get(f"/api/v1/analyses/{meta['key']}/{path}", params=params)
    assert response.status_code == status, response.text
    if detail:
        assert detail in response.json()["detail"]


def test_expired_key_is_404(client):
    assert client.get("/api/v1/analyses/" + "0" * 64 + "/qk-map?layer=0&head=0").status_code == 404


def test_saved_analyses_hold_no_vectors(client, meta):
    saved = client.get(f"/api/v1/analyses/{meta['key']}/export", params={"format": "npz"})
    assert saved.status_code == 200
    opened = client.post(
        "/api/v1/analyses", files={"file": ("saved.npz", io.BytesIO(saved.content), "application/zip")}
    )
    assert opened.status_code == 200, opened.text
    response = client.get(f"/api/v1/analyses/{opened.json()['key']}/qk-map", params={"layer": 0, "head": 0})
    assert response.status_code == 409 and "weights only" in response.json()["detail"]
