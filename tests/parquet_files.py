"""Crafting corpus-run Parquet files for the upload tests: bytes of a table, a column or metadata changed."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq

METADATA_KEY = b"visualizeai"


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def with_column(table: pa.Table, name: str, values) -> pa.Table:
    """``table`` with column ``name`` replaced by ``values`` of the same type."""
    field = table.schema.field(name)
    return table.set_column(table.schema.get_field_index(name), field, pa.array(values, field.type))


def with_meta(table: pa.Table, **changes) -> pa.Table:
    """``table`` with its ``visualizeai`` metadata updated by ``changes``."""
    meta = json.loads(table.schema.metadata[METADATA_KEY])
    meta.update(changes)
    return table.replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()})
