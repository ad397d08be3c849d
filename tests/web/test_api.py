"""The JSON and binary API through FastAPI's TestClient, on the embedded model and a tiny one."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from visualizeai.config import Settings
from visualizeai.web import create_app

pytestmark = pytest.mark.models

TEXT = "I think, therefore I am."


@pytest.fixture(scope="module")
def client(tiny_models):
    root = next(iter(tiny_models.values())).parent
    app = create_app(Settings(allowed_roots=(root,), offline=True))
    with TestClient(app) as c:
        yield c


def test_models_lists_catalog_with_availability(client):
    body = client.get("/api/v1/models").json()
    by_id = {m["id"]: m for m in body["models"]}
    assert body["default"] == "all-MiniLM-L6-v2"
    assert by_id["all-MiniLM-L6-v2"]["availability"] in {"embedded", "loaded"}
    for hub_id in ("bert-base-uncased", "albert-base-v2", "roberta-base", "distilbert-base-uncased"):
        assert by_id[hub_id]["availability"] == "unavailable"
        assert "offline" in by_id[hub_id]["reason"]


def test_analyze_meta(meta):
    assert (meta["layers"], meta["heads"], meta["n"]) == (6, 12, 9)
    assert [t["display"] for t in meta["tokens"]][:3] == ["[CLS]", "I", "think"]
    assert meta["tokens"][5] == {
        "index": 5,
        "raw": "i",
        "display": "I",
        "special": False,
        "start": 19,
        "end": 20,
        "word_id": 4,
        "id": 1045,  # MiniLM's vocabulary id of "i"
        "readable": "i",
        "unknown": False,
    }
    assert meta["truncation"] == {"dropped_tokens": 0, "max_length": 512}


def test_head_binary_equals_result(client, meta):
    result = client.app.state.service.result(meta["key"])
    response = client.get(f"/api/v1/analyses/{meta['key']}/attention", params={"layer": 2, "head": 7})
    assert response.status_code == 200
    assert response.headers["x-shape"] == "9,9" and response.headers["x-dtype"] == "float16"
    matrix = np.frombuffer(response.content, dtype="<f2").reshape(9, 9)
    np.testing.assert_array_equal(matrix, result.attentions[2, 7].astype(np.float16))
    layer = client.get(f"/api/v1/analyses/{meta['key']}/attention", params={"layer": 5})
    assert layer.headers["x-shape"] == "12,9,9" and len(layer.content) == 12 * 81 * 2


def test_thumbnails(client, meta):
    response = client.get(f"/api/v1/analyses/{meta['key']}/thumbnails", params={"size": 4})
    assert response.headers["x-shape"] == "6,12,4,4"
    thumbs = np.frombuffer(response.content, dtype=np.uint8).reshape(6, 12, 4, 4)
    assert (thumbs.reshape(72, -1).max(axis=1) == 255).all()


def test_meta_and_models_say_how_attention_is_held(client, meta):
    result = client.app.state.service.result(meta["key"])
    # a short text holds dense weights (fewer bytes than its queries and keys), a long one queries and keys
    assert meta["attention_mode"] == result.attention.mode == "dense" and meta["n"] < 40
    vectors = sum(layer.nbytes for layer in result.attention.captured)  # kept for the vector views
    assert meta["attention_bytes"] == result.attention.nbytes == 4 * 6 * 12 * meta["n"] ** 2 + vectors
    assert meta["device_bytes"] == 0  # the tests run on the CPU
    long = client.post("/api/v1/analyze", json={"text": "word " * 300}).json()
    assert long["attention_mode"] == "captured" and long["attention_bytes"] < 4 * 6 * 12 * long["n"] ** 2
    by_id = {m["id"]: m for m in client.get("/api/v1/models").json()["models"]}
    minilm = by_id["all-MiniLM-L6-v2"]
    assert minilm["availability"] == "loaded" and minilm["attention_mode"] == "captured"
    assert minilm["attention_reason"] is None
    assert by_id["bert-base-uncased"]["attention_mode"] is None  # not loaded: not known yet


def test_cached_repeat(client, meta):
    again = client.post("/api/v1/analyze", json={"text": TEXT}).json()
    assert again["cached"] is True and again["key"] == meta["key"]


def test_tiny_model_by_path(client, tiny_models):
    response = client.post("/api/v1/analyze", json={"text": TEXT, "model": str(tiny_models["roberta"])})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["kind"] == "masked-lm" and body["tokens"][0]["raw"] == "<s>"


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"text": ""}, 400, "empty"),
        ({"text": "   "}, 400, "empty"),
        ({"text": 12}, 422, "text"),
        ({}, 422, "text"),
        ({"text": "hi", "model": "../../etc"}, 400, "outside the allowed"),
        ({"text": "hi", "model": "/etc"}, 400, "outside the allowed"),
        ({"text": "hi", "model": "https://evil.example/model"}, 400, "URL"),
        ({"text": "hi", "model": "bert-base-uncased"}, 503, "offline"),
        ({"text": "hi", "model": "no such model!"}, 404, "neither in the catalog"),
        ({"text": "x" * (Settings().max_text_chars + 1)}, 400, "limit"),
    ],
)
def test_bad_input_gets_clear_4xx(client, body, status, fragment):
    response = client.post("/api/v1/analyze", json=body)
    assert response.status_code == status, response.text
    assert fragment in response.json()["detail"]


def test_bad_indices_and_keys(client, meta):
    url = f"/api/v1/analyses/{meta['key']}/attention"
    assert client.get(url, params={"layer": 6}).status_code == 400
    assert "out of range" in client.get(url, params={"layer": 0, "head": 12}).json()["detail"]
    assert client.get(url, params={"layer": -1}).status_code == 422
    expired = client.get("/api/v1/analyses/0123abcd/attention", params={"layer": 0})
    assert expired.status_code == 404 and "expired" in expired.json()["detail"]


def test_pages_and_headers(client):
    index = client.get("/")
    assert index.status_code == 200
    assert ">Model<" in index.text and ">Text<" in index.text and "all-MiniLM-L6-v2" in index.text
    assert "script-src 'self'" in index.headers["content-security-policy"]
    page = client.get("/analysis", params={"text": "<img src=x onerror=alert(1)>"})
    assert "<img src=x" not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text


def test_openapi_documents_binary_format(client):
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/api/v1/analyses/{key}/attention"]["get"]
    assert "float16" in op["description"] and "application/octet-stream" in op["responses"]["200"]["content"]


def test_body_size_limit(client):
    over = client.app.state.service.settings.max_body_bytes + 1
    response = client.post(
        "/api/v1/analyze", content=b"{" + b" " * over + b"}", headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


def test_start_page_says_how_each_loaded_model_reads_attention(client, meta):
    page = client.get("/").text
    row = page[page.index("<code>all-MiniLM-L6-v2</code>") :]
    row = row[: row.index("</tr>")]
    assert 'class="badge badge-mode-captured">captured</span>' in row
    assert page.count("checked when loaded") == len(client.get("/api/v1/models").json()["models"]) - 1
