"""Corpus mode over HTTP: the /corpus page and POST /api/v1/corpus/summary (a summary.parquet upload)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from parquet_files import parquet_bytes

from visualizeai.analysis.head_stats import STAT_NAMES
from visualizeai.config import Settings
from visualizeai.corpus import summary
from visualizeai.corpus.schema import TEXT_ROWS_SCHEMA
from visualizeai.web import create_app

LAYERS, HEADS, TEXTS = 3, 5, 40
HOSTILE = "<img src=x onerror=alert(1)>"


def per_text_rows(seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    per_text = LAYERS * HEADS
    columns = {
        "text_index": np.repeat(np.arange(TEXTS), per_text),
        "layer": np.tile(np.repeat(np.arange(LAYERS), HEADS), TEXTS).astype(np.int16),
        "head": np.tile(np.arange(HEADS), LAYERS * TEXTS).astype(np.int16),
        "n_tokens": np.full(TEXTS * per_text, 12, np.int32),
        "dropped_tokens": np.zeros(TEXTS * per_text, np.int32),
    }
    for name in STAT_NAMES:
        columns[name] = rng.uniform(0, 1, TEXTS * per_text).astype(np.float32)
    columns["entropy"][columns["layer"] == 2] = np.nan  # layer 2's entropy: no values at all
    return pa.Table.from_pydict(columns, schema=TEXT_ROWS_SCHEMA)


@pytest.fixture(scope="module")
def rows() -> pa.Table:
    return per_text_rows()


@pytest.fixture(scope="module")
def summary_table(rows) -> pa.Table:
    moments = summary.table_moments(rows, LAYERS, HEADS)
    return summary.summary_table(
        moments, {"model": HOSTILE, "revision": "r1", "texts": TEXTS, "skipped": 2, "truncated_texts": 1}
    )


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(offline=True, max_body_bytes=64_000))) as c:
        yield c


def post(client, data: bytes):
    return client.post(
        "/api/v1/corpus/summary", content=data, headers={"Content-Type": "application/octet-stream"}
    )


def test_page_frame(client):
    response = client.get("/corpus")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    html = response.text
    assert '<label for="summary-file">Summary file</label>' in html
    assert '<label for="corpus-stat">Statistic</label>' in html
    assert 'src="/static/js/pages/corpus.js"' in html and "64,000 bytes" in html
    assert "<script>" not in html and "style=" not in html  # no inline script or style (CSP)
    assert client.get("/static/js/pages/corpus.js").status_code == 200
    assert client.get("/static/css/corpus.css").status_code == 200


def test_summary_round_trip(client, rows, summary_table):
    response = post(client, parquet_bytes(summary_table))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["layers"], body["heads"], body["statistics"]) == (LAYERS, HEADS, list(STAT_NAMES))
    assert (body["model"], body["revision"], body["texts"], body["skipped"], body["truncated_texts"]) == (
        HOSTILE,
        "r1",
        TEXTS,
        2,
        1,
    )
    assert set(body["descriptions"]) == set(STAT_NAMES)
    frame = rows.to_pandas()
    grouped = frame.groupby(["layer", "head"])
    for name in STAT_NAMES:
        mean = np.array(body["mean"][name], dtype=float)  # None → nan
        std = np.array(body["std"][name], dtype=float)
        np.testing.assert_allclose(mean, grouped[name].mean().to_numpy().reshape(LAYERS, HEADS), rtol=1e-6)
        np.testing.assert_allclose(std, grouped[name].std().to_numpy().reshape(LAYERS, HEADS), rtol=1e-5)
        expected_count = grouped[name].count().to_numpy().reshape(LAYERS, HEADS)
        assert body["count"][name] == expected_count.tolist()
    assert body["mean"]["entropy"][2] == [None] * HEADS and body["count"]["entropy"][2] == [0] * HEADS


def test_summary_written_by_a_corpus_run_shape(summary_table):
    """load_summary reads what summary_table writes, cell for cell."""
    loaded = summary.load_summary(parquet_bytes(summary_table))
    assert loaded.mean.shape == (len(STAT_NAMES), LAYERS, HEADS)
    frame = summary_table.to_pandas()
    row = frame[(frame.statistic == "sink_share") & (frame.layer == 1) & (frame["head"] == 4)].iloc[0]
    s = STAT_NAMES.index("sink_share")
    assert loaded.mean[s, 1, 4] == row["mean"] and loaded.count[s, 1, 4] == row["count"]


def _without_rows(table: pa.Table, count: int) -> pa.Table:
    return table.slice(0, table.num_rows - count)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: b"PAR1 this is not parquet", "not a readable Parquet file"),
        (lambda t: b"", "No file was sent"),
        (lambda t: parquet_bytes(t.drop_columns(["mean"])), "no 'mean' column"),
        (
            lambda t: parquet_bytes(t.set_column(0, "layer", pa.array(["0"] * t.num_rows))),
            "'layer' holds string",
        ),
        (lambda t: parquet_bytes(_without_rows(t, 1)), "The summary is incomplete"),
        (
            lambda t: parquet_bytes(pa.concat_tables([_without_rows(t, 1), t.slice(0, 1)])),
            "more than one row for the same layer",
        ),
        (
            lambda t: parquet_bytes(t.set_column(2, "statistic", pa.array(["<b>x</b>"] * t.num_rows))),
            "not a plain identifier",
        ),
        (
            lambda t: parquet_bytes(t.set_column(5, "count", pa.array(np.full(t.num_rows, -1)))),
            "negative count",
        ),
        (lambda t: parquet_bytes(t.slice(0, 0)), "no rows"),
    ],
)
def test_bad_files_are_refused_with_a_reason(client, summary_table, mutate, message):
    response = post(client, mutate(summary_table))
    assert response.status_code == 400, response.text
    assert message in response.json()["detail"]


def test_too_large_is_413(client):
    response = post(client, b"x" * 64_001)
    assert response.status_code == 413
    assert "64,000 bytes" in response.json()["detail"]
