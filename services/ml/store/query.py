"""Filtered, projected document reads on the asyncpg connection: pages, count, sample, export.

The SQL is built here once for every path: ``data @> $n::jsonb`` (served by the GIN
index), an optional ``created_at`` range, a keyset position, and ``fields`` projected in
SQL with ``jsonb_build_object`` over ``#>`` paths, so only the requested parts of a
document ever leave PostgreSQL. Values are always bind parameters, never SQL text.
``data`` leaves as PostgreSQL's text and is sent on as it is (never decoded).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson

from services.common.jsonbody import dumps_value
from services.ml.params import DocumentQuery, FieldTree
from services.ml.store.collections import not_found

# jsonb_build_object takes at most 100 arguments (PostgreSQL's function-argument limit),
# i.e. 50 keys; wider projections are built from chunks joined with ``||``.
_KEYS_PER_CALL = 50


class _Args:
    """Positional bind parameters ($1, $2, ...)."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any, cast: str) -> str:
        self.values.append(value)
        return f"${len(self.values)}::{cast}"


def _projection(tree: FieldTree, prefix: list[str], args: _Args) -> str:
    parts: list[str] = []
    for key, sub in tree.items():
        path = [*prefix, key]
        value = (
            f"data #> {args.add(path, 'text[]')}" if sub is None else _projection(sub, path, args)
        )
        parts.append(f"{args.add(key, 'text')}, {value}")
    calls = [
        f"jsonb_build_object({', '.join(parts[i : i + _KEYS_PER_CALL])})"
        for i in range(0, len(parts), _KEYS_PER_CALL)
    ]
    return calls[0] if len(calls) == 1 else "(" + " || ".join(calls) + ")"


def build(cid: int, q: DocumentQuery, args: _Args) -> tuple[str, str]:
    """The data expression and the WHERE clause of a document read."""
    where = [f"collection_id = {args.add(cid, 'bigint')}"]
    if q.filter:
        where.append(f"data @> {args.add(dumps_value(q.filter).decode(), 'jsonb')}")
    if q.created_after is not None:
        where.append(f"created_at > {args.add(q.created_after, 'timestamptz')}")
    if q.created_before is not None:
        where.append(f"created_at < {args.add(q.created_before, 'timestamptz')}")
    if q.after is not None:
        t, i = args.add(q.after[0], "timestamptz"), args.add(q.after[1], "text")
        where.append(f"(created_at, id) > ({t}, {i})")
    data = _projection(q.fields, [], args) if q.fields else "data"
    return data, " AND ".join(where)


async def collection_id(pg: asyncpg.Connection, name: str) -> int:
    """The collection's id or 404 (on the raw connection, inside its snapshot)."""
    found = await pg.fetchval("SELECT id FROM ml_collections WHERE name = $1", name)
    if found is None:
        raise not_found(name)
    return int(found)


async def page(
    pg: asyncpg.Connection, name: str, q: DocumentQuery, limit: int
) -> tuple[list[dict[str, Any]], tuple[datetime, str] | None]:
    """One keyset page; ``data`` stays JSON text (an ``orjson.Fragment``), never decoded."""
    cid = await collection_id(pg, name)
    args = _Args()
    data, where = build(cid, q, args)
    sql = (
        f"SELECT id, ({data})::text AS data, version, created_at, updated_at "  # noqa: S608
        f"FROM ml_documents WHERE {where} ORDER BY created_at, id "
        f"LIMIT {args.add(limit + 1, 'int')}"
    )
    rows = await pg.fetch(sql, *args.values)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [_item(r, name) for r in rows]
    last = (rows[-1]["created_at"], rows[-1]["id"]) if more and rows else None
    return items, last


async def count(pg: asyncpg.Connection, name: str, q: DocumentQuery) -> int:
    """How many documents match (the same filters as a listing)."""
    cid = await collection_id(pg, name)
    args = _Args()
    _, where = build(cid, q, args)
    found = await pg.fetchval(f"SELECT count(*) FROM ml_documents WHERE {where}", *args.values)  # noqa: S608
    return int(found or 0)


async def sample(
    pg: asyncpg.Connection, name: str, q: DocumentQuery, n: int, seed: str
) -> list[dict[str, Any]]:
    """``n`` documents ranked by ``md5(id || ':' || seed)``: the same seed, the same sample.

    The rank depends only on each document's id and the seed, so a sample is stable
    under inserts of other documents except where a new document out-ranks one in it.
    """
    cid = await collection_id(pg, name)
    args = _Args()
    data, where = build(cid, q, args)
    rank = f"md5(id || ':' || {args.add(seed, 'text')})"
    sql = (
        f"SELECT id, ({data})::text AS data, version, created_at, updated_at "  # noqa: S608
        f"FROM ml_documents WHERE {where} ORDER BY {rank}, id LIMIT {args.add(n, 'int')}"
    )
    return [_item(r, name) for r in await pg.fetch(sql, *args.values)]


def _item(row: Any, name: str) -> dict[str, Any]:
    return {
        "id": row["id"],
        "collection": name,
        "data": orjson.Fragment(row["data"]),
        "version": row["version"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def export_sql(name_arg: str, cid: int, q: DocumentQuery, args: _Args) -> str:
    """One NDJSON line per document, serialised by PostgreSQL itself.

    Concatenating text (``data::text`` as stored) measured ~1.6x faster than
    ``json_build_object``, which re-serialises the whole document.
    """
    data, where = build(cid, q, args)
    return (
        """SELECT '{"id":' || to_json(id)::text || ',"collection":' || """  # noqa: S608
        f"""{name_arg} || ',"data":' || ({data})::text || ',"version":' || version """
        """|| ',"created_at":' || to_json(created_at)::text """
        """|| ',"updated_at":' || to_json(updated_at)::text || '}' """
        f"FROM ml_documents WHERE {where} ORDER BY created_at, id"
    )


class _Batches:
    """NDJSON chunks from a cursor, fetching batch n+1 while the caller sends batch n.

    Overlapping the database round trip with the HTTP send keeps both PostgreSQL and the
    worker busy; at most two batches are held at once.
    """

    def __init__(self, cursor: Any, first: list[Any], batch: int) -> None:
        self._cursor = cursor
        self._rows = first
        self._batch = batch
        self._pending: asyncio.Future[list[Any]] | None = None

    def __aiter__(self) -> _Batches:
        return self

    async def __anext__(self) -> bytes:
        if self._pending is not None:
            self._rows, self._pending = await self._pending, None
        rows = self._rows
        if not rows:
            raise StopAsyncIteration
        self._rows = []
        if len(rows) == self._batch:
            self._pending = asyncio.ensure_future(self._cursor.fetch(self._batch))
        return ("\n".join(r[0] for r in rows) + "\n").encode()

    async def aclose(self) -> None:
        """Stop a fetch still in flight, so the transaction can end."""
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pending
            self._pending = None


@asynccontextmanager
async def export(
    pg: asyncpg.Connection, name: str, q: DocumentQuery, batch: int
) -> AsyncIterator[AsyncIterator[bytes]]:
    """Open one REPEATABLE READ snapshot and a server-side cursor; yield its NDJSON chunks.

    The collection lookup and the first batch happen before the caller sends any
    header, so a missing collection or an unavailable store is still a clean problem
    response. Leaving the context (normally, on error, or cancelled by a client that
    went away) stops the prefetch, closes the cursor and ends the transaction.
    """
    async with pg.transaction(isolation="repeatable_read", readonly=True):
        cid = await collection_id(pg, name)
        args = _Args()
        name_arg = args.add(orjson.dumps(name).decode(), "text")
        cursor = await pg.cursor(export_sql(name_arg, cid, q, args), *args.values)
        batches = _Batches(cursor, await cursor.fetch(batch), batch)
        try:
            yield batches
        finally:
            await batches.aclose()
