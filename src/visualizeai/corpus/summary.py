"""Per-(layer, head) summary of per-text statistics: count, mean and sample std, computed shard by shard.

Pure numpy/pyarrow. Each shard gives exact moments (two passes in float64); shards are merged with the
parallel-variance formula of Chan, Golub and LeVeque, so memory stays at one shard however large the corpus.
``load_summary`` reads a summary file back (the web app's corpus mode) and validates it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visualizeai.analysis.head_stats import STAT_DESCRIPTIONS, STAT_NAMES
from visualizeai.corpus.schema import METADATA_KEY, SUMMARY_FORMAT, SUMMARY_VERSION, summary_schema
from visualizeai.errors import InputError
from visualizeai.extras import require

MAX_GRID = 1024  # layers, and heads, a summary may have
MAX_SUMMARY_ROWS = 200_000
MAX_STATISTICS = 32
STAT_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
METADATA_FIELDS = {"model": str, "revision": str, "texts": int, "skipped": int, "truncated_texts": int}


@dataclass
class Moments:
    """Running count, mean and sum of squared deviations (M2) per statistic, layer and head."""

    count: np.ndarray  # int64 [stats, layers, heads]
    mean: np.ndarray  # float64 [stats, layers, heads]
    m2: np.ndarray  # float64 [stats, layers, heads]

    @classmethod
    def empty(cls, layers: int, heads: int, stats: int = len(STAT_NAMES)) -> Moments:
        shape = (stats, layers, heads)
        return cls(np.zeros(shape, np.int64), np.zeros(shape), np.zeros(shape))

    def merge(self, other: Moments) -> Moments:
        """Moments of both sets together (Chan et al.: exact, and stable when the means differ)."""
        count = self.count + other.count
        safe = np.maximum(count, 1)
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / safe)
        m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / safe)
        return Moments(count, np.where(count > 0, mean, 0.0), m2)

    def std(self) -> np.ndarray:
        """Sample standard deviation (ddof=1); NaN where fewer than two values."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.count > 1, np.sqrt(self.m2 / np.maximum(self.count - 1, 1)), np.nan)


def table_moments(rows, layers: int, heads: int) -> Moments:
    """Moments of one table of per-text rows (``schema.text_rows_schema()``); NaN values are left out."""
    group = rows["layer"].to_numpy().astype(np.int64) * heads + rows["head"].to_numpy()
    if group.size and (group.min() < 0 or group.max() >= layers * heads):
        raise ValueError(f"per-text rows have a layer or head outside {layers} × {heads}")
    out = Moments.empty(layers, heads)
    cells = layers * heads
    for s, name in enumerate(STAT_NAMES):
        values = rows[name].to_numpy().astype(np.float64)
        ok = ~np.isnan(values)
        g, v = group[ok], values[ok]
        count = np.bincount(g, minlength=cells)
        mean = np.bincount(g, weights=v, minlength=cells) / np.maximum(count, 1)
        m2 = np.bincount(g, weights=(v - mean[g]) ** 2, minlength=cells)
        out.count[s], out.mean[s], out.m2[s] = (a.reshape(layers, heads) for a in (count, mean, m2))
    return out


def files_moments(paths: list[Path], layers: int, heads: int) -> Moments:
    """Moments over every per-text Parquet file in ``paths``, read one at a time."""
    pq = require("pyarrow.parquet")
    total = Moments.empty(layers, heads)
    for path in paths:
        total = total.merge(table_moments(pq.read_table(path), layers, heads))
    return total


def summary_table(moments: Moments, metadata: dict):
    """The summary rows (a ``pyarrow.Table`` of ``schema.summary_schema()``), one per layer, head and
    statistic."""
    pa = require("pyarrow")
    n_stats, layers, heads = moments.count.shape
    std = moments.std()
    layer, head = np.meshgrid(np.arange(layers), np.arange(heads), indexing="ij")
    mean = np.where(moments.count > 0, moments.mean, np.nan)
    columns = {
        "layer": np.tile(layer.reshape(-1), n_stats).astype(np.int16),
        "head": np.tile(head.reshape(-1), n_stats).astype(np.int16),
        "statistic": np.repeat(np.array(STAT_NAMES[:n_stats], dtype=object), layers * heads),
        "mean": pa.array(mean.reshape(-1), mask=np.isnan(mean.reshape(-1))),
        "std": pa.array(std.reshape(-1), mask=np.isnan(std.reshape(-1))),
        "count": moments.count.reshape(-1),
    }
    meta = {
        "format": SUMMARY_FORMAT,
        "version": SUMMARY_VERSION,
        "layers": layers,
        "heads": heads,
        "descriptions": {name: STAT_DESCRIPTIONS[name] for name in STAT_NAMES[:n_stats]},
        **metadata,
    }
    schema = summary_schema().with_metadata({METADATA_KEY: json.dumps(meta, ensure_ascii=False).encode()})
    return pa.Table.from_pydict(columns, schema=schema)


# ---- reading a summary back ------------------------------------------------------------------------------


@dataclass
class CorpusSummary:
    """A validated summary: ``mean``/``std``/``count`` are ``[statistics, layers, heads]`` (NaN = none)."""

    statistics: list[str]
    layers: int
    heads: int
    mean: np.ndarray  # float64 [stats, layers, heads]
    std: np.ndarray  # float64 [stats, layers, heads]
    count: np.ndarray  # int64 [stats, layers, heads]
    metadata: dict = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)


def _column(table, name: str, check, what: str):
    if name not in table.column_names:
        raise InputError(
            f"The summary has no {name!r} column (a corpus summary has {', '.join(summary_schema().names)})."
        )
    column = table.column(name)
    if not check(column.type):
        raise InputError(f"Summary column {name!r} holds {column.type}, not {what}.")
    return column


def _metadata(schema) -> tuple[dict, dict[str, str]]:
    """The scalar fields we know from the file's metadata (anything else is ignored), and descriptions."""
    raw = (schema.metadata or {}).get(METADATA_KEY)
    try:
        meta = json.loads(raw) if raw else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        meta = {}
    if not isinstance(meta, dict):
        meta = {}
    out = {}
    for key, kind in METADATA_FIELDS.items():
        value = meta.get(key)
        if isinstance(value, kind) and not isinstance(value, bool):
            out[key] = value[:500] if isinstance(value, str) else value
    return out, dict(STAT_DESCRIPTIONS)


def load_summary(source: bytes | Path | str) -> CorpusSummary:
    """Read and validate a summary Parquet file (bytes or a path); InputError says what is wrong."""
    pa = require("pyarrow")
    pq = require("pyarrow.parquet")
    try:
        reader = pa.BufferReader(source) if isinstance(source, bytes) else str(source)
        table = pq.read_table(reader)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"This is not a readable Parquet file ({exc}).") from None
    if table.num_rows == 0:
        raise InputError("The summary has no rows.")
    if table.num_rows > MAX_SUMMARY_ROWS:
        raise InputError(
            f"The summary has {table.num_rows:,} rows; at most {MAX_SUMMARY_ROWS:,} are accepted."
        )
    layer = _column(table, "layer", pa.types.is_integer, "integers").to_numpy().astype(np.int64)
    head = _column(table, "head", pa.types.is_integer, "integers").to_numpy().astype(np.int64)
    count = _column(table, "count", pa.types.is_integer, "integers").to_numpy().astype(np.int64)
    names = _column(
        table, "statistic", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "strings"
    ).to_pylist()
    floats = [
        _column(table, c, lambda t: pa.types.is_floating(t) or pa.types.is_integer(t), "numbers")
        .cast(pa.float64())
        .to_numpy(zero_copy_only=False)
        for c in ("mean", "std")
    ]
    if layer.min() < 0 or head.min() < 0 or layer.max() >= MAX_GRID or head.max() >= MAX_GRID:
        raise InputError(f"Layers and heads must be numbered from 0 to at most {MAX_GRID - 1}.")
    if count.min() < 0:
        raise InputError("The summary has a negative count.")
    statistics = list(dict.fromkeys(names))
    if len(statistics) > MAX_STATISTICS:
        raise InputError(
            f"The summary has {len(statistics)} statistics; at most {MAX_STATISTICS} are accepted."
        )
    for name in statistics:
        if name is None or not STAT_NAME_RE.match(name):
            raise InputError(f"Statistic name {name!r} is not a plain identifier.")
    layers, heads = int(layer.max()) + 1, int(head.max()) + 1
    if table.num_rows != len(statistics) * layers * heads:
        raise InputError(
            f"The summary is incomplete: {table.num_rows} rows for {len(statistics)} statistics × "
            f"{layers} layers × {heads} heads (every statistic needs a row for every head)."
        )
    s = np.array([statistics.index(n) for n in names]) if len(statistics) > 1 else np.zeros(len(names), int)
    cell = (s * layers + layer) * heads + head
    if np.unique(cell).size != cell.size:
        raise InputError("The summary has more than one row for the same layer, head and statistic.")
    mean, std = (np.full(len(statistics) * layers * heads, np.nan) for _ in range(2))
    counts = np.zeros(len(statistics) * layers * heads, np.int64)
    mean[cell], std[cell], counts[cell] = floats[0], floats[1], count
    if np.isinf(mean).any() or np.isinf(std).any():
        raise InputError("The summary has infinite values.")
    meta, descriptions = _metadata(table.schema)
    shape = (len(statistics), layers, heads)
    return CorpusSummary(
        statistics,
        layers,
        heads,
        mean.reshape(shape),
        std.reshape(shape),
        counts.reshape(shape),
        meta,
        {k: v for k, v in descriptions.items() if k in statistics},
    )
