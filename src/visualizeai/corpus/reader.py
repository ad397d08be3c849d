"""Reading a corpus as a stream of numbered texts, from one file or many shards.

Inputs: ``.txt`` (one text per line), ``.jsonl`` (a field of each line's JSON object) and ``.parquet`` (a
string column), as one file, a directory (every such file below it, in path order), a glob such as
``'wiki/*.jsonl'``, or a Hugging Face ``datasets`` Parquet layout (``DIR/data/train-00000-of-00002.parquet``;
``split`` picks the split). ``scan`` reads everything once, in bounded memory: it checks every record (a bad
line stops the run before anything is computed), hashes the files and counts records and texts per shard.
``iter_texts`` then streams ``(text_index, text)`` pairs.

A text's index is its record's position in the whole input: records are numbered from 0 through the files
in order (lines of ``.txt`` and ``.jsonl``, rows of ``.parquet``); ``Plan.files`` gives each file's first
index. Empty and whitespace-only texts (and nulls) are skipped but keep their index reserved, so an index
always points back at the same line or row.
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visualizeai.errors import InputError

FORMATS = (".txt", ".jsonl", ".parquet")
DEFAULT_TEXT_FIELD = "text"
DEFAULT_SPLIT = "train"
PARQUET_BATCH_ROWS = 8192
HF_SHARD = re.compile(r"^(?P<split>[A-Za-z0-9_.]+?)-\d{5}-of-\d{5}\.parquet$")


@dataclass(frozen=True)
class InputFile:
    """One input file: its path, format, size, SHA-256, records, and the index of its first record."""

    path: Path
    size: int
    sha256: str
    records: int
    first_index: int

    @property
    def suffix(self) -> str:
        return self.path.suffix.lower()


@dataclass
class Plan:
    """What ``scan`` found: the files in order, and the texts per shard of ``shard_size`` records.

    Attributes:
        files: the input files, in the order their records are numbered.
        records: records in all files, empty ones included (indices are below this).
        texts: non-empty texts.
        shard_texts: non-empty texts of each shard ``k`` (records ``k·shard_size … (k+1)·shard_size − 1``).
    """

    files: list[InputFile]
    text_field: str
    shard_size: int
    records: int = 0
    texts: int = 0
    shard_texts: list[int] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return self.records - self.texts

    @property
    def shards(self) -> int:
        return max(1, len(self.shard_texts))

    def identity(self) -> dict:
        """What identifies the input's content: every file's size and SHA-256, in order."""
        digest = hashlib.sha256()
        for f in self.files:
            digest.update(f"{f.size}:{f.sha256}\n".encode())
        return {"input_size": sum(f.size for f in self.files), "input_sha256": digest.hexdigest()}


# ---- finding the files ------------------------------------------------------------------------------------


def _hf_layout(directory: Path, split: str) -> list[Path] | None:
    """The Parquet shards of ``split`` in a Hugging Face ``datasets`` layout under ``directory``, if any."""
    data = directory / "data"
    if not data.is_dir():
        return None
    shards = sorted(p for p in data.rglob("*.parquet") if HF_SHARD.match(p.name))
    if not shards:
        return None
    chosen = [p for p in shards if HF_SHARD.match(p.name)["split"] == split]
    if not chosen:
        splits = sorted({HF_SHARD.match(p.name)["split"] for p in shards})
        raise InputError(f"{directory}: no split {split!r} (its splits: {', '.join(splits)}); use --split.")
    return chosen


def find_files(source: Path | str, split: str = DEFAULT_SPLIT) -> list[Path]:
    """The input files ``source`` names (a file, a directory, a glob, a datasets layout), in order."""
    text = str(source)
    if any(c in text for c in "*?["):
        paths = [Path(p) for p in sorted(glob.glob(text, recursive=True)) if Path(p).is_file()]
        if not paths:
            raise InputError(f"{text}: no file matches this pattern.")
    else:
        path = Path(source)
        if path.is_dir():
            paths = _hf_layout(path, split) or sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS
            )
            if not paths:
                raise InputError(f"{path}: no {', '.join(FORMATS)} files in this directory.")
            return paths
        if not path.is_file():
            if path.suffix.lower() not in FORMATS:
                _check_format(path)
            raise InputError(f"{path}: no such file.")
        paths = [path]
    for p in paths:
        _check_format(p)
    return paths


def _check_format(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(
            f"{path}: unsupported input format {suffix or '(no extension)'!r}; "
            f"use one of {', '.join(FORMATS)}."
        )


# ---- records of one file ----------------------------------------------------------------------------------


def _txt_records(path: Path) -> Iterator[str | None]:
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark is not text
            try:
                yield raw.rstrip(b"\r\n").decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}: line {number} is not valid UTF-8 ({exc.reason}).") from None


def _jsonl_records(path: Path, text_field: str) -> Iterator[str | None]:
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                yield None
                continue
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InputError(f"{path}: line {number} is not valid JSON ({exc}).") from None
            if not isinstance(record, dict):
                raise InputError(f"{path}: line {number} is a JSON {type(record).__name__}, not an object.")
            if text_field not in record:
                keys = ", ".join(repr(k) for k in list(record)[:10]) or "none"
                raise InputError(
                    f"{path}: line {number} has no {text_field!r} field (its fields: {keys}); "
                    "name the text field with --text-field."
                )
            value = record[text_field]
            if value is not None and not isinstance(value, str):
                raise InputError(
                    f"{path}: line {number}: field {text_field!r} is a {type(value).__name__}, not a string."
                )
            yield value


def _parquet_file(path: Path, text_field: str):
    from visualizeai.extras import require

    pa = require("pyarrow")
    pq = require("pyarrow.parquet")
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc}).") from None
    schema = parquet.schema_arrow
    if text_field not in schema.names:
        names = ", ".join(repr(n) for n in schema.names[:20]) or "none"
        raise InputError(
            f"{path}: no column {text_field!r} (its columns: {names}); "
            "name the text column with --text-field."
        )
    kind = schema.field(text_field).type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)):
        raise InputError(f"{path}: column {text_field!r} holds {kind}, not strings.")
    return parquet


def _parquet_records(path: Path, text_field: str) -> Iterator[str | None]:
    from visualizeai.extras import require

    pa = require("pyarrow")
    parquet = _parquet_file(path, text_field)
    try:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=[text_field]):
            yield from batch.column(0).to_pylist()
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: cannot read column {text_field!r} ({exc}).") from None


def records(path: Path, text_field: str = DEFAULT_TEXT_FIELD) -> Iterator[str | None]:
    """Every record of one file in order: its text, or None for a blank line or null."""
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return _txt_records(path)
    if suffix == ".jsonl":
        return _jsonl_records(path, text_field)
    return _parquet_records(path, text_field)


def _is_text(value: str | None) -> bool:
    return value is not None and bool(value.strip())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# ---- the whole input --------------------------------------------------------------------------------------


def scan(
    source: Path | str,
    text_field: str = DEFAULT_TEXT_FIELD,
    shard_size: int = 2048,
    split: str = DEFAULT_SPLIT,
) -> Plan:
    """Check and count every record of the input (one pass, bounded memory); InputError names the file,
    line and problem when a record cannot be used."""
    paths = find_files(source, split)
    plan = Plan([], text_field, shard_size)
    index = 0
    counts: list[int] = []
    for path in paths:
        first = index
        for value in records(path, text_field):
            if _is_text(value):
                shard = index // shard_size
                while len(counts) <= shard:
                    counts.append(0)
                counts[shard] += 1
                plan.texts += 1
            index += 1
        plan.files.append(InputFile(path, path.stat().st_size, _sha256(path), index - first, first))
    plan.records = index
    plan.shard_texts = counts + [0] * (-(-index // shard_size) - len(counts))
    if not plan.texts:
        where = paths[0] if len(paths) == 1 else source
        raise InputError(f"{where}: no texts (all {plan.records} records are empty).")
    return plan


def iter_texts(plan: Plan, start: int = 0) -> Iterator[tuple[int, str]]:
    """``(text_index, text)`` of every non-empty record with an index from ``start`` on, streamed."""
    for f in plan.files:
        if f.first_index + f.records <= start:
            continue
        for offset, value in enumerate(records(f.path, plan.text_field)):
            index = f.first_index + offset
            if index >= start and _is_text(value):
                yield index, value


@dataclass(frozen=True)
class Corpus:
    """A small input read whole: its non-empty texts with their indices (tests and benchmarks)."""

    indices: np.ndarray  # int64 [texts]
    texts: list[str]
    records: int

    @property
    def skipped(self) -> int:
        return self.records - len(self.texts)

    def __len__(self) -> int:
        return len(self.texts)


def read_corpus(
    source: Path | str, text_field: str = DEFAULT_TEXT_FIELD, split: str = DEFAULT_SPLIT
) -> Corpus:
    """Every non-empty text of ``source`` in memory (``scan``'s checks first)."""
    plan = scan(source, text_field, split=split)
    pairs = list(iter_texts(plan))
    return Corpus(np.array([i for i, _ in pairs], dtype=np.int64), [t for _, t in pairs], plan.records)
