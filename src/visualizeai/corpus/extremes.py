"""The texts where each head is most extreme: for every statistic, layer and head, the ``k`` texts (or
windows) with the highest and the lowest value, merged shard by shard as the run goes, then written with
the texts.

``DIR/extremes.parquet``, one row per (statistic, layer, head, side, rank)::

    statistic   string   a name of STAT_NAMES
    layer       int16
    head        int16
    side        string   "high" or "low"
    rank        int8     0 for the most extreme
    value       float32  the text's statistic
    text_index  int64    the text's record number in the input
    window      int32    its window (0 unless ``--long-texts window``)
    char_start  int32    where the window starts in the text
    n_tokens    int32    tokens the model saw
    text        string   the text from ``char_start``, at most ``CHARS_PER_TOKEN · n_tokens`` characters
    text_cut    bool     True when the text was cut to that many characters

Ties are broken by text index, then window, so the file does not depend on the order shards finish in. Texts
with no value (empty) never appear; a head with fewer than ``k`` texts has fewer rows. Its schema metadata key
``visualizeai`` holds JSON: format, version, model, revision, layers, heads, k.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from visualizeai.analysis.head_stats import STAT_NAMES
from visualizeai.corpus.schema import read_checked_table
from visualizeai.errors import InputError
from visualizeai.extras import require

EXTREMES_FORMAT = "visualizeai-corpus-extremes"
EXTREMES_VERSION = 1
METADATA_KEY = b"visualizeai"
DEFAULT_K = 5
SIDES = ("high", "low")
CHARS_PER_TOKEN = 32  # a window's text is kept to this many characters a token: room for any tokenizer's
MAX_TEXT_CHARS = 100_000
NOT_EXTREMES = "This is not the extremes.parquet of a corpus run: {reason}"

_FIELDS = ("text_index", "window", "char_start", "n_tokens")


@dataclass(frozen=True)
class Extremes:
    """The best ``k`` candidates of each side: ``value`` float64 ``[sides, statistics, layers, heads, k]``
    (NaN where a slot is empty) and, of the same shape, the candidate's ``text_index``, ``window``,
    ``char_start`` and ``n_tokens`` (int64; -1 where empty)."""

    value: np.ndarray
    text_index: np.ndarray
    window: np.ndarray
    char_start: np.ndarray
    n_tokens: np.ndarray

    @property
    def k(self) -> int:
        return self.value.shape[-1]

    @classmethod
    def empty(cls, layers: int, heads: int, k: int = DEFAULT_K) -> Extremes:
        shape = (len(SIDES), len(STAT_NAMES), layers, heads, k)
        return cls(np.full(shape, np.nan), *(np.full(shape, -1, dtype=np.int64) for _ in _FIELDS))

    @classmethod
    def of_rows(cls, rows, layers: int, heads: int, k: int = DEFAULT_K) -> Extremes:
        """The extremes of one table of per-text rows (``schema.text_rows_schema()``)."""
        columns = {name: rows.column(name).to_numpy() for name in ("layer", "head", *_FIELDS)}
        # every text (window) has one row per layer and head: order them so that they reshape to [T, L, H]
        order = np.lexsort((columns["head"], columns["layer"], columns["window"], columns["text_index"]))
        count = order.size // (layers * heads)
        if count * layers * heads != order.size:
            raise ValueError(f"{order.size} rows are not whole texts of {layers} layers × {heads} heads")

        def grid(values: np.ndarray) -> np.ndarray:  # [T, L, H] → [L, H, T]
            return np.moveaxis(values[order].reshape(count, layers, heads), 0, -1)

        stats = np.stack([grid(rows.column(name).to_numpy().astype(np.float64)) for name in STAT_NAMES])
        fields = [np.broadcast_to(grid(columns[name].astype(np.int64)), stats.shape) for name in _FIELDS]
        both = np.stack([stats, stats])  # [sides, S, L, H, T]
        return _best(both, [np.stack([f, f]) for f in fields], k)

    def merge(self, other: Extremes) -> Extremes:
        """The best ``k`` of both (commutative: ties go to the lower text index, then window)."""
        joined = [
            np.concatenate([a, b], axis=-1) for a, b in zip(self._arrays(), other._arrays(), strict=True)
        ]
        return _best(joined[0], joined[1:], max(self.k, other.k))

    def _arrays(self) -> list[np.ndarray]:
        return [self.value, self.text_index, self.window, self.char_start, self.n_tokens]

    def wanted(self) -> dict[int, set[int]]:
        """Text index → the char_start of each of its windows that is an extreme."""
        out: dict[int, set[int]] = {}
        valid = self.text_index >= 0
        for index, start in zip(
            self.text_index[valid].tolist(), self.char_start[valid].tolist(), strict=True
        ):
            out.setdefault(index, set()).add(start)
        return out


def _best(values: np.ndarray, fields: list[np.ndarray], k: int) -> Extremes:
    """The ``k`` highest (side 0) and lowest (side 1) of ``values`` ``[2, S, L, H, C]`` along the last axis,
    NaN last; ``fields``: text_index, window, char_start, n_tokens of the same shape."""
    text_index, window = fields[0], fields[1]
    missing = np.isnan(values) | (text_index < 0)
    key = np.where(missing, np.inf, values * np.array([-1.0, 1.0])[:, None, None, None, None])
    order = np.lexsort((window, text_index, key), axis=-1)[..., :k]
    take = [np.take_along_axis(a, order, axis=-1) for a in (values, *fields)]
    empty = np.take_along_axis(missing, order, axis=-1)
    take[0] = np.where(empty, np.nan, take[0])
    for a in take[1:]:
        a[empty] = -1
    if order.shape[-1] < k:  # fewer candidates than slots: pad with empty ones
        pad = [(0, 0)] * (order.ndim - 1) + [(0, k - order.shape[-1])]
        take = [np.pad(take[0], pad, constant_values=np.nan)] + [
            np.pad(a, pad, constant_values=-1) for a in take[1:]
        ]
    return Extremes(*take)


def window_texts(extremes: Extremes, texts: Iterable[tuple[int, str]]) -> dict[tuple[int, int], str]:
    """``(text_index, char_start)`` → the full text from ``char_start``, read from ``texts`` (the input's
    ``(index, text)`` stream) for every extreme; the stream is left as soon as the last one is found."""
    wanted = extremes.wanted()
    out: dict[tuple[int, int], str] = {}
    last = max(wanted, default=-1)
    for index, text in texts:
        if index in wanted:
            for start in wanted[index]:
                out[(index, start)] = text[start:]
        if index >= last:
            break
    return out


def extremes_table(extremes: Extremes, texts: dict[tuple[int, int], str], metadata: dict):
    """The ``pyarrow.Table`` of ``extremes.parquet`` (module docstring)."""
    pa = require("pyarrow")
    side, stat, layer, head, rank = np.nonzero(extremes.text_index >= 0)
    picked = [a[side, stat, layer, head, rank] for a in extremes._arrays()]
    value, text_index, window, char_start, n_tokens = picked
    kept, cut = [], []
    for index, start, n in zip(text_index.tolist(), char_start.tolist(), n_tokens.tolist(), strict=True):
        whole = texts[(index, start)]
        limit = min(MAX_TEXT_CHARS, CHARS_PER_TOKEN * max(1, n))
        kept.append(whole[:limit])
        cut.append(len(whole) > limit)
    table = pa.table(
        {
            "statistic": pa.array([STAT_NAMES[s] for s in stat.tolist()], pa.string()),
            "layer": pa.array(layer, pa.int16()),
            "head": pa.array(head, pa.int16()),
            "side": pa.array([SIDES[s] for s in side.tolist()], pa.string()),
            "rank": pa.array(rank, pa.int8()),
            "value": pa.array(value, pa.float32()),
            "text_index": pa.array(text_index, pa.int64()),
            "window": pa.array(window, pa.int32()),
            "char_start": pa.array(char_start, pa.int32()),
            "n_tokens": pa.array(n_tokens, pa.int32()),
            "text": pa.array(kept, pa.string()),
            "text_cut": pa.array(cut, pa.bool_()),
        }
    )
    layers, heads = extremes.value.shape[2:4]
    meta = {
        "format": EXTREMES_FORMAT,
        "version": EXTREMES_VERSION,
        **metadata,
        "layers": int(layers),
        "heads": int(heads),
        "k": extremes.k,
    }
    return table.replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()})


# ---- reading it back (the corpus page) --------------------------------------------------------------------

MAX_ENTRIES = 1_000_000  # rows a file may have: 8 statistics × 2 sides × k × heads, far below for any model


@dataclass(frozen=True)
class ExtremeText:
    """One text of a head's list: the statistic's value on it, where it is in the corpus, and its text (an
    index into the list of distinct texts)."""

    statistic: str
    layer: int
    head: int
    side: str
    rank: int
    value: float
    text_index: int
    window: int
    char_start: int
    n_tokens: int
    text: int  # index into ``LoadedExtremes.texts``
    text_cut: bool


@dataclass(frozen=True)
class LoadedExtremes:
    metadata: dict
    entries: list[ExtremeText]
    texts: list[str]  # each distinct text once


def load_extremes(data: bytes) -> LoadedExtremes:
    """Read and check an ``extremes.parquet`` (its bytes); ``InputError`` saying what is wrong otherwise."""
    expected = {
        "statistic": "string",
        "layer": "int16",
        "head": "int16",
        "side": "string",
        "rank": "int8",
        "value": "float32",
        "text_index": "int64",
        "window": "int32",
        "char_start": "int32",
        "n_tokens": "int32",
        "text": "string",
        "text_cut": "bool_",
    }
    table, metadata = read_checked_table(
        data,
        what="extremes.parquet",
        fmt=EXTREMES_FORMAT,
        version=EXTREMES_VERSION,
        columns=expected,
        max_rows=MAX_ENTRIES,
    )
    columns = {name: table.column(name).to_pylist() for name in expected}
    layers, heads = metadata.get("layers"), metadata.get("heads")
    if not all(isinstance(v, int) and v > 0 for v in (layers, heads)):
        raise InputError(NOT_EXTREMES.format(reason="its metadata has no layers and heads."))
    bad = next(
        (
            i
            for i in range(table.num_rows)
            if columns["statistic"][i] not in STAT_NAMES
            or columns["side"][i] not in SIDES
            or not 0 <= columns["layer"][i] < layers
            or not 0 <= columns["head"][i] < heads
            or columns["rank"][i] < 0
            or not math.isfinite(columns["value"][i])
        ),
        None,
    )
    if bad is not None:
        reason = f"row {bad} names no statistic, side, layer or head of it, or has no finite value."
        raise InputError(NOT_EXTREMES.format(reason=reason))
    texts: dict[str, int] = {}
    entries = []
    for i in range(table.num_rows):
        text = columns["text"][i]
        entries.append(
            ExtremeText(
                **{name: columns[name][i] for name in expected if name not in ("text",)},
                text=texts.setdefault(text, len(texts)),
            )
        )
    return LoadedExtremes(metadata=metadata, entries=entries, texts=list(texts))
