"""A Parquet file written row group by row group, its bytes handed on as they are made.

pyarrow's ``ParquetWriter`` writes into a sink that only collects what it is given; after
each row group the collected bytes are taken and sent, so a worker holds one row group
(its rows as Python values, then as Arrow arrays, then encoded) and never the file. The
footer (the schema and every row group's offsets) comes last, on :meth:`ParquetStream.close`.
Encoding runs in a thread (pyarrow releases the GIL), so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from services.ml.store.columns import Column

PARQUET = "application/vnd.apache.parquet"
#: zstd: about as fast as snappy to write here and a good deal smaller on the wire.
COMPRESSION = "zstd"
_TYPES: dict[str, Any] = {
    "string": pa.string(),
    "json": pa.string(),
    "bool": pa.bool_(),
    "int64": pa.int64(),
    "float64": pa.float64(),
}


def schema(columns: list[Column], collection: str) -> Any:
    """The file's schema: the row's metadata, then one column per projected field.

    ``json`` columns are strings holding JSON text; their field metadata says so.
    """
    fields = [
        pa.field("id", pa.string(), nullable=False),
        pa.field("version", pa.int64(), nullable=False),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("updated_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
    for c in columns:
        meta = {b"strata.encoding": b"json"} if c.kind == "json" else None
        fields.append(pa.field(c.name, _TYPES[c.kind], metadata=meta))
    return pa.schema(fields, metadata={b"strata.collection": collection.encode()})


class _Sink:
    """A write-only file that keeps what it is given until :meth:`take`."""

    closed = False

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._written = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        """Nothing to flush: the bytes wait for :meth:`take`."""

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts = []
        return out


class ParquetStream:
    """One export's Parquet file: :meth:`write` a row group, :meth:`close` for the footer."""

    def __init__(self, columns: list[Column], collection: str) -> None:
        self.schema = schema(columns, collection)
        self._sink = _Sink()
        self._writer = pq.ParquetWriter(self._sink, self.schema, compression=COMPRESSION)

    def _write(self, columns: list[list[Any]]) -> bytes:
        arrays = [
            pa.array(values, type=f.type) for values, f in zip(columns, self.schema, strict=True)
        ]
        table = pa.Table.from_arrays(arrays, schema=self.schema)
        self._writer.write_table(table, row_group_size=max(1, table.num_rows))
        return self._sink.take()

    async def write(self, columns: list[list[Any]]) -> bytes:
        """One row group of these rows (column by column, in schema order); its bytes."""
        return await asyncio.to_thread(self._write, columns)

    def _close(self) -> bytes:
        self._writer.close()
        return self._sink.take()

    async def close(self) -> bytes:
        """The rest of the file: the footer."""
        return await asyncio.to_thread(self._close)
