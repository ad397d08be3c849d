"""Long inputs end to end: a 200k-character text reaches a long-context decoder through the API, is cut at
the model's context with the truncation reported, and is read back in tiles; whole-head requests that would
be gigabytes are refused with the figures, as are inputs over the character cap or the attention budget.

The model is the tiny random Llama with its context widened (RoPE has no learned positions, so the weights
are unchanged), loaded through the app like any local model directory: to 4,096 positions in the default
suite, and to the full 32,768-token cap in the ``scale`` tier (``make test-scale``), where one forward pass
and the tiles of a 32k² head take tens of seconds on two CPU cores.
"""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from tiny_models import widen_context

from visualizeai.config import Settings
from visualizeai.web import create_app

pytestmark = [pytest.mark.models, pytest.mark.slow]

CONTEXTS = [4_096, pytest.param(32_768, marks=pytest.mark.scale)]
SENTENCE = "The quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat. "


@pytest.fixture(scope="module", params=CONTEXTS)
def context(request) -> int:
    return request.param


@pytest.fixture(scope="module")
def long_llama(tiny_models, tmp_path_factory, context):
    return widen_context(tiny_models["llama"], tmp_path_factory.mktemp(f"long{context}") / "llama", context)


@pytest.fixture(scope="module")
def client(long_llama):
    settings = Settings(allowed_roots=(long_llama.parent,), offline=True)
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def long_meta(client, long_llama):
    text = SENTENCE * (200_000 // len(SENTENCE))
    assert 190_000 < len(text) <= Settings().max_text_chars
    response = client.post("/api/v1/analyze", json={"text": text, "model": str(long_llama)})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_200k_character_text_is_analysed_up_to_the_context(long_meta, context):
    assert long_meta["n"] == context
    assert long_meta["truncation"]["max_length"] == context and long_meta["truncation"]["dropped_tokens"] > 0
    assert long_meta["attention_mode"] == "captured"
    dense = 4 * long_meta["layers"] * long_meta["heads"] * context**2
    assert long_meta["attention_bytes"] * context // 64 < dense  # q and k: linear in n, dense weights n²
    assert long_meta["predictions"] and long_meta["predictions"][0]["position"] == context - 1


def test_tiles_of_a_long_analysis(client, long_meta, context):
    url = f"/api/v1/analyses/{long_meta['key']}/tile"
    last = f"{context - 1024}:{context}"  # the last 1,024 queries over every key, pooled to 128 × 128
    picture = client.get(url, params={"layer": 1, "head": 2, "rows": last, "size": 128, "pool": "max"})
    assert picture.status_code == 200, picture.text
    assert picture.headers["x-shape"] == "128,128" and picture.headers["x-exact"] == "false"
    values = np.frombuffer(picture.content, dtype="<f2").reshape(128, 128).astype(np.float32)
    assert np.all(values.max(axis=1) > 0)
    first_query = context - 1024 + np.arange(128) * 8  # each cell: 8 queries × 32 keys
    last_query, first_key = first_query + 7, np.arange(128) * (context // 128)
    hidden = first_key[None, :] > last_query[:, None]  # every key of the cell comes after every query
    assert hidden.any() and np.all(values[hidden] == 0) and values[-1, -1] > 0  # causal at any zoom
    exact = client.get(url, params={"layer": 1, "head": 2, "rows": f"{context - 1}:{context}", "size": 1024})
    assert exact.headers["x-exact"] == "false" and exact.headers["x-shape"] == "1,1024"
    tail = f"{context - 768}:{context}"
    row = client.get(url, params={"layer": 1, "head": 2, "rows": f"{context - 1}:{context}", "cols": tail})
    assert row.headers["x-shape"] == "1,256"  # pooled to the default size
    exact = client.get(
        url, params={"layer": 1, "head": 2, "rows": f"{context - 1}:{context}", "cols": tail, "size": 768}
    )
    assert exact.headers["x-exact"] == "true" and exact.headers["x-shape"] == "1,768"
    assert 0 < np.frombuffer(exact.content, dtype="<f2").astype(np.float32).sum() <= 1.001


@pytest.mark.scale
@pytest.mark.parametrize("context", [32_768], indirect=True)
def test_a_whole_32k_head_is_refused_with_the_figures(client, long_meta):
    response = client.get(f"/api/v1/analyses/{long_meta['key']}/attention", params={"layer": 0, "head": 0})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "4,294,967,296 bytes" in detail and "tile" in detail


@pytest.mark.parametrize("context", [4_096], indirect=True)
def test_text_over_the_character_cap_is_refused_with_the_numbers(client, long_llama):
    limit = Settings().max_text_chars
    response = client.post("/api/v1/analyze", json={"text": "x" * (limit + 1), "model": str(long_llama)})
    assert response.status_code == 400
    assert response.json()["detail"] == f"Text is {limit + 1:,} characters long; the limit is {limit:,}."


@pytest.mark.parametrize("context", [4_096], indirect=True)
def test_an_input_over_the_attention_budget_is_refused_before_the_model_runs(long_llama):
    settings = Settings(allowed_roots=(long_llama.parent,), offline=True, max_attention_bytes=1_000_000)
    with TestClient(create_app(settings)) as c:
        response = c.post("/api/v1/analyze", json={"text": SENTENCE * 200, "model": str(long_llama)})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert str(long_llama) in detail and "tokens fit" in detail
    assert "over the limit of 1,000,000 bytes" in detail
