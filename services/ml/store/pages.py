"""Keyset pages and reproducible samples, each bounded by rows and by bytes.

A page holds at most ``limit`` documents and stops early once the ``data`` of the
documents in it reaches ``max_bytes`` (the document that crosses the budget is
included, so a page always makes progress); a sample does the same for ``n``. Either
way the caller learns whether more follow and where to continue: a page from its last
``(created_at, id)``, a sample from its last ``(rank, id)`` and how many it has served.

PostgreSQL renders only a little more than it sends: a page reads keyset chunks sized
from what it has seen; a sample ranks ids only (its sort carries no documents), then
renders the documents of those ids a few at a time (:func:`render`), each query cut at
what is left of the budget.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson

from services.ml.params import DocumentQuery
from services.ml.store.query import (
    Args,
    bounded,
    build,
    collection_id,
    next_rows,
    planned,
    projection,
    where,
    within_budget,
)

_KEYS = "id, version, created_at, updated_at"
_COLUMNS = f"{_KEYS}, ord"


@dataclass(frozen=True)
class Budget:
    """Bytes of ``data`` per answer, and how many documents to render first."""

    bytes: int
    first_rows: int


def _item(row: Any, name: str) -> dict[str, Any]:
    return {
        "id": row["id"],
        "collection": name,
        "data": orjson.Fragment(row["line"]),
        "version": row["version"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


async def render(
    pg: asyncpg.Connection, cid: int, q: DocumentQuery, ids: list[str], budget: Budget
) -> tuple[list[Any], bool]:
    """The documents ``ids`` in that order, until their data reach the budget.

    Returns the rows and whether every id was rendered. The first query asks for as many
    documents as fit even at the largest allowed size; the next ones for as many as the
    average size seen lets fit in what is left. (An id deleted meanwhile ends the read
    early, as a cut would: the caller continues after the last row.)
    """
    rows: list[Any] = []
    used, start, count = 0, 0, budget.first_rows
    while start < len(ids) and used < budget.bytes:
        chunk = ids[start : start + count]
        args = Args()
        data = projection(q, args)
        inner = (
            f"SELECT d.id, d.version, d.created_at, d.updated_at, k.ord, ({data})::text AS line "  # noqa: S608
            f"FROM unnest({args.add(chunk, 'text[]')}) WITH ORDINALITY AS k(id, ord) "
            f"JOIN ml_documents d ON d.collection_id = {args.add(cid, 'bigint')} "
            'AND d.id = k.id COLLATE "C" ORDER BY k.ord'
        )
        left = args.add(budget.bytes - used, "bigint")
        got = await pg.fetch(within_budget(inner, _COLUMNS, "ord", left), *args.values)
        rows += got
        size = sum(len(r["line"]) for r in got)
        used, start = used + size, start + len(chunk)
        if len(got) < len(chunk):
            return rows, False
        count = next_rows(size, len(got), budget.bytes - used, len(ids) - start)
    return rows, start >= len(ids)


async def page(
    pg: asyncpg.Connection, name: str, q: DocumentQuery, limit: int, budget: Budget
) -> tuple[list[dict[str, Any]], tuple[datetime, str] | None]:
    """One keyset page and the ``(created_at, id)`` to continue after, if any.

    Read in keyset chunks (:func:`~services.ml.store.query.bounded`: each cut at what is
    left of the budget, with a look-ahead row that says whether more follow): the first
    asks for the documents that fit even at the largest size, the next for as many as
    the average size seen lets fit, so a page of small documents takes two queries and
    one of 1 MB documents renders only a document or two it does not send.
    """
    cid = await collection_id(pg, name)
    rows: list[Any] = []
    used, position = 0, q.after
    want = min(limit, budget.first_rows)
    while True:
        args = Args()
        data, condition = build(cid, replace(q, after=position), args)
        inner = (
            f"SELECT {_KEYS}, ({data})::text AS line FROM ml_documents "  # noqa: S608
            f"WHERE {condition} ORDER BY created_at, id LIMIT {args.add(want + 1, 'int')}"
        )
        left, most = args.add(budget.bytes - used, "bigint"), args.add(want, "int")
        statement = await planned(pg, bounded(inner, _KEYS, "created_at, id", left, most))
        got = await statement.fetch(*args.values)
        kept = [r for r in got if r["keep"]]
        rows += kept
        size = sum(len(r["line"]) for r in kept)
        used += size
        more = len(kept) < len(got)
        if not more or len(kept) < want or len(rows) >= limit or used >= budget.bytes:
            break
        position = (kept[-1]["created_at"], kept[-1]["id"])
        room = limit - len(rows)
        want = next_rows(size, len(kept), budget.bytes - used, room)
    last = rows[-1] if more and rows else None
    items = [_item(r, name) for r in rows]
    return items, (last["created_at"], last["id"]) if last is not None else None


@dataclass(frozen=True)
class SamplePosition:
    """Where a sample continues: after ``(rank, id)``, ``served`` documents already sent."""

    rank: str
    id: str
    served: int


async def sample(
    pg: asyncpg.Connection,
    name: str,
    q: DocumentQuery,
    n: int,
    seed: str,
    budget: Budget,
    after: SamplePosition | None = None,
) -> tuple[list[dict[str, Any]], SamplePosition | None]:
    """``n`` documents ranked by ``md5(id || ':' || seed)``: the same seed, the same sample.

    The rank depends only on each document's id and the seed, so a sample is stable
    under inserts of other documents except where a new document out-ranks one in it.
    The ranking sorts ids only; the documents are rendered afterwards, as many as fit.
    """
    cid = await collection_id(pg, name)
    args = Args()
    condition = where(cid, q, args)
    rank = f"md5(id || ':' || {args.add(seed, 'text')})"
    served = after.served if after else 0
    if after is not None:
        position = f"{args.add(after.rank, 'text')}, {args.add(after.id, 'text')}"
        condition += f" AND ({rank}, id) > ({position})"
    statement = await planned(
        pg,
        f"SELECT id, {rank} AS rank FROM ml_documents WHERE {condition} "  # noqa: S608
        f"ORDER BY rank, id LIMIT {args.add(n - served, 'int')}",
    )
    ranked = await statement.fetch(*args.values)
    rows, complete = await render(pg, cid, q, [r["id"] for r in ranked], budget)
    items = [_item(r, name) for r in rows]
    if complete or not rows:
        return items, None
    ranks = {r["id"]: r["rank"] for r in ranked}
    last = rows[-1]["id"]
    return items, SamplePosition(ranks[last], last, served + len(rows))
