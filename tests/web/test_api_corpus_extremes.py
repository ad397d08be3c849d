"""POST /api/v1/corpus/extremes: the extremes.parquet of a corpus run read back for the corpus page, and
every malformed file refused with its reason."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from parquet_files import parquet_bytes, with_column, with_meta

from visualizeai.analysis.head_stats import STAT_NAMES
from visualizeai.config import Settings
from visualizeai.corpus import extremes
from visualizeai.corpus.schema import text_rows_schema
from visualizeai.web import create_app

LAYERS, HEADS, TEXTS = 2, 3, 9
HOSTILE = "<img src=x onerror=alert(1)>"


def rows_table(seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    per_text = LAYERS * HEADS
    count = TEXTS * per_text
    columns = {
        "text_index": np.repeat(np.arange(TEXTS), per_text),
        "window": np.zeros(count, np.int32),
        "token_start": np.zeros(count, np.int32),
        "char_start": np.zeros(count, np.int32),
        "layer": np.tile(np.repeat(np.arange(LAYERS), HEADS), TEXTS).astype(np.int16),
        "head": np.tile(np.arange(HEADS), LAYERS * TEXTS).astype(np.int16),
        "n_tokens": np.full(count, 4, np.int32),
        "dropped_tokens": np.zeros(count, np.int32),
    }
    for name in STAT_NAMES:
        columns[name] = rng.integers(0, 5, count).astype(np.float32)  # ties, broken by text index
    return pa.Table.from_pydict(columns, schema=text_rows_schema())


def text_of(index: int) -> str:
    return f"text {index} " + (HOSTILE if index == 4 else "plain") + " " + "x" * 200 * (index == 2)


@pytest.fixture(scope="module")
def table() -> pa.Table:
    found = extremes.Extremes.of_rows(rows_table(), LAYERS, HEADS, k=3)
    texts = extremes.window_texts(found, ((i, text_of(i)) for i in range(TEXTS)))
    return extremes.extremes_table(found, texts, {"model": HOSTILE, "revision": None})


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(Settings(offline=True, max_body_bytes=64_000))) as c:
        yield c


def post(client, data: bytes):
    return client.post(
        "/api/v1/corpus/extremes", content=data, headers={"Content-Type": "application/octet-stream"}
    )


def test_entries_and_texts_come_back(client, table):
    response = post(client, parquet_bytes(table))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["layers"], body["heads"], body["k"]) == (HOSTILE, LAYERS, HEADS, 3)
    assert len(body["entries"]) == len(STAT_NAMES) * LAYERS * HEADS * 2 * 3
    assert len(body["texts"]) == len(set(body["texts"]))  # each text once
    rows = rows_table().to_pandas()
    for name in ("entropy", "sink_share"):
        part = rows[(rows["layer"] == 1) & (rows["head"] == 2)]
        for side, ascending in (("high", False), ("low", True)):
            expected = part.sort_values([name, "text_index"], ascending=[ascending, True]).head(3)
            got = sorted(
                (
                    e
                    for e in body["entries"]
                    if (e["statistic"], e["layer"], e["head"], e["side"]) == (name, 1, 2, side)
                ),
                key=lambda e: e["rank"],
            )
            assert [e["text_index"] for e in got] == expected.text_index.tolist()
            assert [e["value"] for e in got] == expected[name].tolist()
            for e in got:
                whole = text_of(e["text_index"])
                assert body["texts"][e["text"]] == whole[: extremes.CHARS_PER_TOKEN * 4]
                assert e["text_cut"] == (len(whole) > extremes.CHARS_PER_TOKEN * 4)


BAD = [
    ("not Parquet", lambda t: b"PAR1 nope", "it is not a Parquet file"),
    (
        "a summary instead",
        lambda t: parquet_bytes(t.replace_schema_metadata({})),
        "its metadata does not name",
    ),
    ("another version", lambda t: parquet_bytes(with_meta(t, version=9)), "its version is 9"),
    ("no layers", lambda t: parquet_bytes(with_meta(t, layers="2")), "no layers and heads"),
    ("a column missing", lambda t: parquet_bytes(t.drop_columns(["text"])), "no string column 'text'"),
    (
        "a column of another type",
        lambda t: parquet_bytes(
            t.set_column(
                t.schema.get_field_index("layer"), "layer", pa.array(t["layer"].to_numpy().astype(np.int64))
            )
        ),
        "no int16 column 'layer'",
    ),
    (
        "an unknown statistic",
        lambda t: parquet_bytes(with_column(t, "statistic", ["oracle"] * t.num_rows)),
        "row 0 names no statistic",
    ),
    (
        "a layer out of range",
        lambda t: parquet_bytes(with_column(t, "layer", [LAYERS] * t.num_rows)),
        "row 0 names no statistic",
    ),
    (
        "a NaN value",
        lambda t: parquet_bytes(with_column(t, "value", [float("nan")] * t.num_rows)),
        "no finite value",
    ),
    (
        "a null text",
        lambda t: parquet_bytes(with_column(t, "text", [None] * t.num_rows)),
        "column 'text' has empty values",
    ),
]


@pytest.mark.parametrize(("craft", "fragment"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_malformed_files_are_refused_with_the_reason(client, table, craft, fragment):
    response = post(client, craft(table))
    assert response.status_code == 400, response.text
    assert fragment in response.json()["detail"]


def test_too_large_and_empty(client):
    assert post(client, b"x" * 64_001).status_code == 413
    response = post(client, b"")
    assert response.status_code == 400 and "No file was sent" in response.json()["detail"]
