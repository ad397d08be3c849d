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
