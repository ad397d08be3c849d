"""Reading a corpus file into numbered texts: ``.txt`` (one text per line), ``.jsonl`` or ``.parquet``.

A text's index is its position in the file: the 0-based line number for ``.txt`` and ``.jsonl``, the row
number for ``.parquet``. Empty and whitespace-only texts (and nulls) are skipped but keep their index
reserved, so an index always points back at the same line or row of the input.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visualizeai.errors import InputError

FORMATS = (".txt", ".jsonl", ".parquet")
DEFAULT_TEXT_FIELD = "text"


@dataclass(frozen=True)
class Corpus:
    """The non-empty texts of an input file with their indices.

    Attributes:
        indices: int64 ``[texts]``, ascending position in the file of each text.
        texts: the texts, in the same order.
        records: lines or rows in the file, empty ones included (indices are below this).
        skipped: how many records were empty, whitespace-only or null.
    """

    indices: np.ndarray  # int64 [texts]
    texts: list[str]
    records: int

    @property
    def skipped(self) -> int:
        return self.records - len(self.texts)

    def __len__(self) -> int:
        return len(self.texts)


def _keep(texts: list[str | None]) -> Corpus:
    indices = [i for i, t in enumerate(texts) if t is not None and t.strip()]
    return Corpus(np.asarray(indices, dtype=np.int64), [texts[i] for i in indices], len(texts))


def _read_txt(path: Path) -> list[str | None]:
    texts: list[str | None] = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark is not text
            try:
                texts.append(raw.rstrip(b"\r\n").decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}: line {number} is not valid UTF-8 ({exc.reason}).") from None
    return texts


def _read_jsonl(path: Path, field: str) -> list[str | None]:
    texts: list[str | None] = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                texts.append(None)
                continue
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InputError(f"{path}: line {number} is not valid JSON ({exc}).") from None
            if not isinstance(record, dict):
                raise InputError(f"{path}: line {number} is a JSON {type(record).__name__}, not an object.")
            if field not in record:
                keys = ", ".join(repr(k) for k in list(record)[:10]) or "none"
                raise InputError(
                    f"{path}: line {number} has no {field!r} field (its fields: {keys}); "
                    "name the text field with --text-field."
                )
            value = record[field]
            if value is not None and not isinstance(value, str):
                raise InputError(
                    f"{path}: line {number}: field {field!r} is a {type(value).__name__}, not a string."
                )
            texts.append(value)
    return texts


def _read_parquet(path: Path, field: str) -> list[str | None]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc}).") from None
    if field not in schema.names:
        names = ", ".join(repr(n) for n in schema.names[:20]) or "none"
        raise InputError(
            f"{path}: no column {field!r} (its columns: {names}); name the text column with --text-field."
        )
    kind = schema.field(field).type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)):
        raise InputError(f"{path}: column {field!r} holds {kind}, not strings.")
    try:
        column = pq.read_table(path, columns=[field]).column(field)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: cannot read column {field!r} ({exc}).") from None
    return column.to_pylist()


def read_corpus(path: Path | str, text_field: str = DEFAULT_TEXT_FIELD) -> Corpus:
    """The texts of ``path``; raises InputError naming the file, line and problem when it cannot be used."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(
            f"{path}: unsupported input format {suffix or '(no extension)'!r}; "
            f"use one of {', '.join(FORMATS)}."
        )
    if not path.is_file():
        raise InputError(f"{path}: no such file.")
    if suffix == ".txt":
        texts = _read_txt(path)
    elif suffix == ".jsonl":
        texts = _read_jsonl(path, text_field)
    else:
        texts = _read_parquet(path, text_field)
    corpus = _keep(texts)
    if not len(corpus):
        raise InputError(f"{path}: no texts (all {corpus.records} records are empty).")
    return corpus


def file_identity(path: Path | str) -> dict:
    """What identifies an input file's content: its size and SHA-256 (plus path and mtime, for people)."""
    path = Path(path)
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    stat = path.stat()
    return {
        "path": str(path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256": digest.hexdigest(),
    }
