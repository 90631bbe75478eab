"""An export's body in its format: NDJSON (gzip when accepted) or Parquet, chunk by chunk.

Each source is an async context: entering it opens the snapshot and does everything that
may still fail cleanly (the collection lookup, a held snapshot's import, the resume
point, the first fetch or the column types) before the caller sends the response head;
it then yields ``(bytes, documents)`` pairs to send.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from itertools import chain

import asyncpg  # type: ignore[import-untyped]

from services.common.compression import GzipStream
from services.ml.params import DocumentQuery
from services.ml.parquet import ParquetStream
from services.ml.store import columns as typed
from services.ml.store import export
from services.ml.store.export import Budget
from services.ml.store.snapshot import Imported, reading

Chunks = AsyncIterator[tuple[bytes, int]]


@dataclass(frozen=True)
class ExportRequest:
    """What to export and how: the query, the snapshot and the resume point, the limits."""

    name: str
    q: DocumentQuery
    budget: Budget
    idle_timeout_ms: int
    row_group_rows: int
    snapshot: Imported | None = None
    resume: str | None = None


async def _gzip(chunks: AsyncIterator[bytes]) -> AsyncGenerator[tuple[bytes, int], None]:
    stream = GzipStream()
    async for chunk in chunks:
        # zlib releases the GIL: compressing a multi-MiB chunk does not stall the loop.
        yield await asyncio.to_thread(stream.chunk, chunk), chunk.count(b"\n")
    yield stream.finish(), 0


async def _plain(chunks: AsyncIterator[bytes]) -> AsyncGenerator[tuple[bytes, int], None]:
    async for chunk in chunks:
        yield chunk, chunk.count(b"\n")


@asynccontextmanager
async def ndjson(pg: asyncpg.Connection, r: ExportRequest, *, gzip: bool) -> AsyncIterator[Chunks]:
    """The NDJSON export (:mod:`services.ml.store.export`), gzip-compressed when asked."""
    async with export.export(
        pg, r.name, r.q, r.budget, r.idle_timeout_ms, snapshot=r.snapshot, resume=r.resume
    ) as chunks:
        out = _gzip(chunks) if gzip else _plain(chunks)
        try:
            yield out
        finally:
            await out.aclose()


async def _row_groups(
    pg: asyncpg.Connection, cid: int, q: DocumentQuery, cols: list[typed.Column], r: ExportRequest
) -> AsyncGenerator[tuple[bytes, int], None]:
    """Row groups of at most ``row_group_rows`` rows and the byte budget (plus one row),
    then the footer."""
    stream = ParquetStream(cols, r.name)
    pending: list[typed.Batch] = []
    rows = size = 0

    async def flush() -> tuple[bytes, int]:
        nonlocal pending, rows, size
        width = len(pending[0].columns)
        merged = [list(chain.from_iterable(b.columns[i] for b in pending)) for i in range(width)]
        count, pending, rows, size = rows, [], 0, 0
        return await stream.write(merged), count

    def room() -> tuple[int, int]:
        """What is left of the row group: each batch fits in it (plus one row at most)."""
        return r.budget.bytes - size, r.row_group_rows - rows

    async for batch in typed.batches(pg, cid, q, cols, room, r.budget.first_rows):
        pending.append(batch)
        rows += batch.rows
        size += batch.size
        if rows >= r.row_group_rows or size >= r.budget.bytes:
            yield await flush()
    if pending:
        yield await flush()
    yield await stream.close(), 0


@asynccontextmanager
async def parquet(pg: asyncpg.Connection, r: ExportRequest) -> AsyncIterator[Chunks]:
    """The Parquet export: column types inferred in the snapshot, then row groups."""
    async with reading(
        pg, r.name, r.q, r.idle_timeout_ms, snapshot=r.snapshot, resume=r.resume
    ) as (cid, q):
        # Types from the whole selection, not this shard's or the rest after ``after``:
        # every part of a sharded or resumed export of one snapshot has the same schema.
        whole = dataclasses.replace(q, shard=None, after=None)
        cols = await typed.infer(pg, cid, whole, typed.columns_of(q.fields))
        out = _row_groups(pg, cid, q, cols, r)
        try:
            yield out
        finally:
            await out.aclose()
