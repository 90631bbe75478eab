"""The NDJSON export: one snapshot, one server-side cursor, memory bounded in bytes.

The export streams ``EXPORT_BATCH_SIZE`` rows per fetch from one cursor (an asyncpg
portal) in a ``REPEATABLE READ READ ONLY`` transaction, PostgreSQL serialising each line.
A fetch is bounded in bytes without knowing the documents' sizes in advance: the cursor
sends a line only when it is at most ``per_line = EXPORT_BATCH_BYTES / EXPORT_BATCH_SIZE``
bytes, so a fetch holds at most ``EXPORT_BATCH_BYTES``. (Lines from the cursor are text,
joined and encoded once per chunk: measured cheaper overall than ``bytea`` here, which
cost PostgreSQL a copy per row behind the subquery.) A larger document comes back as
its id alone (without being rendered when its stored size already exceeds ``per_line``),
and is rendered afterwards with the others of its run, by id, in the same snapshot, in
queries cut at the byte budget (:func:`~services.ml.store.query.within_budget`). Small
documents therefore stream as fast as a plain cursor; large ones cost one lookup each.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson

from services.ml.params import DocumentQuery
from services.ml.store.query import (
    Args,
    next_rows,
    planned,
    projection,
    where,
    within_budget,
)
from services.ml.store.snapshot import Imported, reading


@dataclass(frozen=True)
class Budget:
    """Rows per cursor fetch, bytes per fetch (and per render), rows of a first render."""

    rows: int
    bytes: int
    first_rows: int = 1

    @property
    def per_line(self) -> int:
        """The largest line a fetch carries inline: ``rows`` of them fill ``bytes``."""
        return max(1, self.bytes // self.rows)


def line_sql(name_arg: str, data: str) -> str:
    """One NDJSON line, serialised by PostgreSQL: the API's document shape.

    Concatenating text (``data::text`` as stored) measured ~1.6x faster than
    ``json_build_object``, which re-serialises the whole document.
    """
    return (
        """'{"id":' || to_json(id)::text || ',"collection":' || """
        f"""{name_arg} || ',"data":' || ({data})::text || ',"version":' || version """
        """|| ',"created_at":' || to_json(created_at)::text """
        """|| ',"updated_at":' || to_json(updated_at)::text || '}'"""
    )


def cursor_sql(name: str, cid: int, q: DocumentQuery, args: Args, budget: Budget) -> str:
    """Every match in ``(created_at, id)`` order: a line when small enough, else its id.

    ``OFFSET 0`` keeps PostgreSQL from inlining the line into each use (it would render
    it twice). Without ``fields``, a document whose stored size (``pg_column_size``)
    exceeds the per-line bound is not rendered here at all: its line is almost surely
    larger, and when it is not (numbers take more room stored than printed) it only
    takes the slower path. A stored size under the bound (small, or compressed) is
    rendered and measured exactly.
    """
    condition = where(cid, q, args)
    line = line_sql(args.add(orjson.dumps(name).decode(), "text"), projection(q, args))
    bound = args.add(budget.per_line, "int")
    rendered = line if q.fields else f"CASE WHEN pg_column_size(data) <= {bound} THEN {line} END"
    return (
        "SELECT CASE WHEN big THEN id END AS id, "  # noqa: S608
        "CASE WHEN NOT big THEN line END AS line FROM ("
        f"SELECT id, line, line IS NULL OR octet_length(line) > {bound} AS big FROM ("
        f"SELECT id, {rendered} AS line FROM ml_documents WHERE {condition} "
        "ORDER BY created_at, id OFFSET 0) i) b"
    )


def render_sql(name: str, cid: int, q: DocumentQuery, args: Args, ids: list[str], left: int) -> str:
    """The lines of ``ids`` in that order, cut where the lines before reach ``left`` bytes."""
    line = line_sql(args.add(orjson.dumps(name).decode(), "text"), projection(q, args))
    inner = (
        f"SELECT k.ord, {line} AS line "  # noqa: S608
        f"FROM unnest({args.add(ids, 'text[]')}) WITH ORDINALITY AS k(key, ord) "
        f"JOIN ml_documents d ON d.collection_id = {args.add(cid, 'bigint')} "
        'AND d.id = k.key COLLATE "C" ORDER BY k.ord'
    )
    return within_budget(inner, "ord", "ord", args.add(left, "bigint"))


class _Export:
    """NDJSON chunks of at most about one budget, in order, from the cursor and renders.

    While a chunk of small documents is being sent, the next fetch is already running
    (overlapping the round trip with the send keeps PostgreSQL and the worker busy).
    """

    def __init__(
        self, pg: asyncpg.Connection, name: str, cid: int, q: DocumentQuery, budget: Budget
    ) -> None:
        self._pg, self._name, self._cid, self._q, self._budget = pg, name, cid, q, budget
        self._cursor: Any = None
        self._pending: asyncio.Future[list[Any]] | None = None

    async def open(self) -> None:
        """Open the cursor and fetch the first rows, before any response header is sent.

        Their errors (a missing collection, the store unavailable) are then still clean
        problem responses.
        """
        args = Args()
        sql = cursor_sql(self._name, self._cid, self._q, args, self._budget)
        self._cursor = await (await planned(self._pg, sql)).cursor(*args.values)
        self._fetch()
        assert self._pending is not None
        await self._pending

    def _fetch(self) -> None:
        self._pending = asyncio.ensure_future(self._cursor.fetch(self._budget.rows))

    async def _render(self, ids: list[str]) -> AsyncGenerator[list[bytes], None]:
        """The lines of ``ids``, in order, a budget's worth at a time."""
        start, count = 0, self._budget.first_rows
        while start < len(ids):
            chunk = ids[start : start + count]
            args = Args()
            sql = render_sql(self._name, self._cid, self._q, args, chunk, self._budget.bytes)
            rows = await self._pg.fetch(sql, *args.values)
            lines = [r[1] for r in rows]
            # The snapshot still holds every id; should one be missing, skip past it.
            start += rows[-1][0] if rows else len(chunk)
            size = sum(map(len, lines))
            count = next_rows(size, len(lines), self._budget.bytes, len(ids) - start)
            yield lines

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """The export, chunk by chunk."""
        while self._pending is not None:
            rows, self._pending = await self._pending, None
            more = len(rows) == self._budget.rows
            if all(r[0] is None for r in rows):  # all small: one chunk, next fetch meanwhile
                if more:
                    self._fetch()
                text = "\n".join([r[1] for r in rows])
                del rows
                if text:
                    yield (text + "\n").encode()
                continue
            out: list[bytes] = []
            size = 0
            for small, group in itertools.groupby(rows, key=lambda r: r[0] is None):
                run = list(group)
                parts = (
                    self._one([r[1].encode() for r in run])
                    if small
                    else self._render([r[0] for r in run])
                )
                async for lines in parts:
                    out += lines
                    size += sum(map(len, lines))
                    if size >= self._budget.bytes:
                        yield b"\n".join(out) + b"\n"
                        out, size = [], 0
            del rows
            if more:
                self._fetch()
            if out:
                yield b"\n".join(out) + b"\n"

    @staticmethod
    async def _one(lines: list[bytes]) -> AsyncGenerator[list[bytes], None]:
        yield lines

    async def aclose(self) -> None:
        """Stop a fetch still in flight, so the transaction can end."""
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pending
            self._pending = None


@asynccontextmanager
async def export(
    pg: asyncpg.Connection,
    name: str,
    q: DocumentQuery,
    budget: Budget,
    idle_timeout_ms: int,
    *,
    snapshot: Imported | None = None,
    resume: str | None = None,
) -> AsyncIterator[AsyncIterator[bytes]]:
    """Open one REPEATABLE READ snapshot (a held one when given) and its cursor; yield
    the NDJSON chunks (after document ``resume`` when given).

    The collection lookup and the first fetch happen before the caller sends any header.
    ``idle_timeout_ms`` makes PostgreSQL end the session if the worker stops asking for
    rows (a backstop behind the worker's own send deadline). Leaving the context
    (normally, on error, or cancelled by a client that went away) stops the fetch in
    flight, closes the cursor and ends the transaction.
    """
    async with reading(pg, name, q, idle_timeout_ms, snapshot=snapshot, resume=resume) as (cid, q):
        exporter = _Export(pg, name, cid, q, budget)
        try:
            await exporter.open()
            chunks = exporter.chunks()
            try:
                yield chunks
            finally:
                await chunks.aclose()
        finally:
            await exporter.aclose()
