"""POST /api/v1/corpus/qk-map: the qk_map.parquet of a corpus run read back for the corpus page (each head's
points equal the map computed from the sample), and malformed files refused with the reason."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from parquet_files import parquet_bytes, with_column, with_meta

from visualizeai.analysis.vectors import HeadVectors, qk_map
from visualizeai.config import Settings
from visualizeai.corpus import qk_sample
from visualizeai.web import create_app

LAYERS, HEADS, KV, DIM, M = 2, 4, 2, 8, 24
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def sample() -> qk_sample.TokenSample:
    rng = np.random.default_rng(3)
    return qk_sample.TokenSample(
        hash=np.sort(rng.integers(0, 2**63, M).astype(np.uint64)),
        text_index=rng.integers(0, 50, M),
        window=np.zeros(M, np.int32),
        position=rng.integers(0, 30, M).astype(np.int32),
        piece=[HOSTILE if i == 5 else f"tok{i}" for i in range(M)],
        before=[f"before {i}" for i in range(M)],
        after=[f"after {i}" for i in range(M)],
        special=np.arange(M) == 0,
        queries=rng.normal(size=(M, LAYERS, HEADS, DIM)).astype(np.float16),
        keys=rng.normal(size=(M, LAYERS, KV, DIM)).astype(np.float16),
        scaling=[DIM**-0.5] * LAYERS,
        softcap=[None] * LAYERS,
        sinks=[None] * LAYERS,
    )


@pytest.fixture(scope="module")
def table(sample) -> pa.Table:
    return qk_sample.qk_map_table(sample, {"model": HOSTILE, "revision": None})


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(offline=True))) as c:
        yield c


def post(client, data: bytes):
    return client.post(
        "/api/v1/corpus/qk-map", content=data, headers={"Content-Type": "application/octet-stream"}
    )


def test_every_heads_points_equal_the_map_of_the_sample(client, table, sample):
    response = post(client, parquet_bytes(table))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["layers"], body["heads"]) == (HOSTILE, LAYERS, HEADS)
    assert body["tokens"]["piece"] == sample.piece
    assert body["tokens"]["text_index"] == sample.text_index.tolist()
    for layer, head in ((0, 0), (1, 3)):
        v = HeadVectors(
            sample.queries[:, layer, head].astype(np.float32),
            sample.keys[:, layer, head // (HEADS // KV)].astype(np.float32),  # grouped-query: its kv head
            DIM**-0.5,
            np.zeros(M, np.int64),
            np.full(M, M, np.int64),
            None,
            None,
        )
        expected = qk_map(v, max_points=M)
        np.testing.assert_array_equal(np.float32(body["queries"][layer][head]), expected["queries"])
        np.testing.assert_array_equal(np.float32(body["keys"][layer][head]), expected["keys"])
        assert body["heads_info"][layer][head]["explained"] == expected["explained"]


BAD = [
    ("not Parquet", lambda t: b"PAR1 nope", "it is not a Parquet file"),
    ("no metadata", lambda t: parquet_bytes(t.replace_schema_metadata({})), "its metadata does not name"),
    ("another version", lambda t: parquet_bytes(with_meta(t, version=2)), "its version is 2"),
    ("heads_info malformed", lambda t: parquet_bytes(with_meta(t, heads_info=[["x"]])), "heads_info"),
    (
        "explained NaN",
        lambda t: parquet_bytes(
            with_meta(t, heads_info=[[{"explained": [float("nan"), 0], "translated": True}] * HEADS] * LAYERS)
        ),
        "heads_info",
    ),
    ("a column missing", lambda t: parquet_bytes(t.drop_columns(["piece"])), "no string column 'piece'"),
    ("rows missing", lambda t: parquet_bytes(t.slice(0, t.num_rows - 1)), "rows, not 2 × 4 × 2 × 24"),
    ("a point twice", lambda t: parquet_bytes(with_column(t, "token", [0] * t.num_rows)), "not every layer"),
    ("a NaN point", lambda t: parquet_bytes(with_column(t, "x", [float("nan")] * t.num_rows)), "not finite"),
    (
        "a null piece",
        lambda t: parquet_bytes(with_column(t, "piece", [None] * t.num_rows)),
        "has empty values",
    ),
]


@pytest.mark.parametrize(("craft", "fragment"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_malformed_files_are_refused_with_the_reason(client, table, craft, fragment):
    response = post(client, craft(table))
    assert response.status_code == 400, response.text
    assert fragment in response.json()["detail"]


def test_empty_body(client):
    response = post(client, b"")
    assert response.status_code == 400 and "No file was sent" in response.json()["detail"]
