"""The two Parquet tables a corpus run writes, both tidy (one observation per row).

Per-text rows (``texts/shard-NNNNN.parquet``): one row per (text, layer, head)::

    text_index      int64    position of the text in the input (record number from 0, over all files)
    window          int32    0-based window of a text split by ``--long-texts window`` (else 0)
    token_start     int32    position of the window's first token among the text's tokens (specials aside)
    char_start      int32    character offset in the text where the window's first token starts
    layer           int16    0-based
    head            int16    0-based
    n_tokens        int32    tokens the model saw, special tokens included (after truncation)
    dropped_tokens  int32    tokens truncation removed from the end (0 when the text fit, or in windows)
    entropy … sink_share  float32, one column per ``analysis.head_stats.STAT_NAMES``

A text that tokenizes to nothing (possible only for a tokenizer that adds no special tokens) has
``n_tokens`` 0 and NaN statistics; summaries leave NaN out.

Summary (``summary.parquet``): one row per (layer, head, statistic)::

    layer      int16
    head       int16
    statistic  string   a name of STAT_NAMES
    mean       float64  over the texts
    std        float64  sample standard deviation (ddof=1); null when count < 2
    count      int64    texts that contributed (non-NaN values)

Its schema metadata key ``visualizeai`` holds JSON: format, version, model, revision, layers, heads, texts,
skipped, truncated_texts and the statistics' descriptions.
"""

from __future__ import annotations

from functools import cache

from visualizeai.analysis.head_stats import STAT_NAMES
from visualizeai.extras import require

SUMMARY_FORMAT = "visualizeai-corpus-summary"
SUMMARY_VERSION = 1
METADATA_KEY = b"visualizeai"


@cache
def text_rows_schema():
    """The per-text rows' ``pyarrow.Schema`` (pyarrow is imported on first use: an optional extra)."""
    pa = require("pyarrow")
    return pa.schema(
        [
            pa.field("text_index", pa.int64(), nullable=False),
            pa.field("window", pa.int32(), nullable=False),
            pa.field("token_start", pa.int32(), nullable=False),
            pa.field("char_start", pa.int32(), nullable=False),
            pa.field("layer", pa.int16(), nullable=False),
            pa.field("head", pa.int16(), nullable=False),
            pa.field("n_tokens", pa.int32(), nullable=False),
            pa.field("dropped_tokens", pa.int32(), nullable=False),
            *(pa.field(name, pa.float32(), nullable=False) for name in STAT_NAMES),
        ]
    )


@cache
def summary_schema():
    """The summary's ``pyarrow.Schema``."""
    pa = require("pyarrow")
    return pa.schema(
        [
            pa.field("layer", pa.int16(), nullable=False),
            pa.field("head", pa.int16(), nullable=False),
            pa.field("statistic", pa.string(), nullable=False),
            pa.field("mean", pa.float64()),
            pa.field("std", pa.float64()),
            pa.field("count", pa.int64(), nullable=False),
        ]
    )


WINDOW_COLUMNS = ("window", "token_start", "char_start")


def __getattr__(name: str):
    # the schemas as constants, built on first use so that importing this module never imports pyarrow;
    # TEXT_ROWS_SCHEMA is the per-text rows without the window columns (as version 1 wrote them), which is
    # all a summary reads
    if name == "TEXT_ROWS_SCHEMA":
        pa = require("pyarrow")
        return pa.schema([f for f in text_rows_schema() if f.name not in WINDOW_COLUMNS])
    if name == "SUMMARY_SCHEMA":
        return summary_schema()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def read_checked_table(
    data: bytes, *, what: str, fmt: str, version: int, columns: dict[str, str], max_rows: int
):
    """``(table, metadata)`` of a Parquet file a corpus run wrote, read from its bytes and checked: at most
    ``max_rows`` rows, the ``visualizeai`` metadata naming ``fmt`` at ``version``, and every column of
    ``columns`` (name → pyarrow type name, e.g. ``"int16"``, ``"string"``, ``"bool_"``) present with that type
    and no nulls. Anything else is an ``InputError`` beginning "This is not the {what} of a corpus run"."""
    import json

    from visualizeai.errors import InputError

    pa = require("pyarrow")
    pq = require("pyarrow.parquet")

    def refuse(reason: str) -> InputError:
        return InputError(f"This is not the {what} of a corpus run: {reason}")

    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        if parquet.metadata.num_rows > max_rows:
            raise refuse(f"it has {parquet.metadata.num_rows:,} rows.")
        table = parquet.read()
    except InputError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise refuse(f"it is not a Parquet file ({exc}).") from None
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    try:
        metadata = json.loads(raw) if raw else None
    except ValueError:
        metadata = None
    if not isinstance(metadata, dict) or metadata.get("format") != fmt:
        raise refuse("its metadata does not name the format.")
    if metadata.get("version") != version:
        raise refuse(f"its version is {metadata.get('version')!r}; this version reads {version}.")
    for name, type_name in columns.items():
        kind = getattr(pa, type_name)()
        if name not in table.column_names or table.schema.field(name).type != kind:
            raise refuse(f"it has no {kind} column {name!r}.")
        if table.column(name).null_count:
            raise refuse(f"column {name!r} has empty values.")
    return table, metadata
