"""The SQL of document reads on the asyncpg connection: filters, projection, byte bounds.

Built here once for every read path (pages and samples in :mod:`.pages`, the export in
:mod:`.export`, count here): ``data @> $n::jsonb`` (served by the GIN index), an
optional ``created_at`` range, a keyset position, and ``fields`` projected in SQL with
``jsonb_build_object`` over ``#>`` paths, so only the requested parts of a document ever
leave PostgreSQL. Values are always bind parameters, never SQL text. ``data`` leaves as
PostgreSQL's text (as bytes) and is sent on as it is (never decoded).

Every read that returns documents is bounded in bytes, not only in rows: PostgreSQL
measures each row's text and a running sum (a window) keeps only the rows that start
below the byte budget (:func:`within_budget`), so a worker never receives more than the
budget plus one document, whatever the size of the documents. And PostgreSQL renders
only a few documents past a budget: rows are asked for in numbers sized from what was
seen (:func:`next_rows`), starting with what fits even if every document had the
largest allowed size.

A read whose WHERE comes from :func:`where` is prepared afresh for each run
(:func:`planned`), so PostgreSQL plans it for its values.
"""

from __future__ import annotations

from typing import Any

import asyncpg  # type: ignore[import-untyped]

from services.common.jsonbody import dumps_value
from services.ml.errors import CollectionNotFoundError
from services.ml.params import DocumentQuery, FieldTree

# jsonb_build_object takes at most 100 arguments (PostgreSQL's function-argument limit),
# i.e. 50 keys; wider projections are built from chunks joined with ``||``.
_KEYS_PER_CALL = 50


class Args:
    """Positional bind parameters ($1, $2, ...)."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def add(self, value: Any, cast: str) -> str:
        """Bind ``value``; returns its placeholder with the cast."""
        self.values.append(value)
        return f"${len(self.values)}::{cast}"


async def planned(pg: asyncpg.Connection, sql: str) -> Any:
    """``sql`` prepared for one run, so that PostgreSQL plans it with that run's values.

    The best plan of a filtered read depends on its values: whether the filter or the
    keyset index narrows more, how many documents the collection holds. A statement from
    the connection's cache may switch to a generic plan after five runs, one choice for
    every value; a statement prepared once is always planned with its values, at the cost
    of one more round trip. Every other statement (the point read, the writes) keeps the
    cache and PostgreSQL's plan cache: their plan is the same for any value, and planning
    was half of PostgreSQL's time per point read.
    """
    return await pg.prepare(sql)


def _projection(tree: FieldTree, prefix: list[str], args: Args) -> str:
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


def projection(q: DocumentQuery, args: Args) -> str:
    """The expression of a document's ``data`` as the read wants it (``fields`` applied)."""
    return _projection(q.fields, [], args) if q.fields else "data"


def where(cid: int, q: DocumentQuery, args: Args) -> str:
    """The WHERE clause of a document read (collection, filter, range, keyset position)."""
    conditions = [f"collection_id = {args.add(cid, 'bigint')}"]
    if q.filter:
        conditions.append(f"data @> {args.add(dumps_value(q.filter).decode(), 'jsonb')}")
    if q.created_after is not None:
        conditions.append(f"created_at > {args.add(q.created_after, 'timestamptz')}")
    if q.created_before is not None:
        conditions.append(f"created_at < {args.add(q.created_before, 'timestamptz')}")
    if q.after is not None:
        t, i = args.add(q.after[0], "timestamptz"), args.add(q.after[1], "text")
        conditions.append(f"(created_at, id) > ({t}, {i})")
    if q.shard is not None:
        # hashtext is PostgreSQL's own string hash: every shard of a snapshot is read on
        # the same server, so all agree on it. The mask keeps it non-negative.
        i, n = args.add(q.shard[0], "int"), args.add(q.shard[1], "int")
        conditions.append(f"(hashtext(id) & 2147483647) % {n} = {i}")
    return " AND ".join(conditions)


def build(cid: int, q: DocumentQuery, args: Args) -> tuple[str, str]:
    """The data expression and the WHERE clause of a document read."""
    condition = where(cid, q, args)
    return projection(q, args), condition


def within_budget(inner: str, columns: str, order: str, budget: str) -> str:
    """The rows of ``inner`` whose preceding lines total less than ``budget`` bytes.

    ``inner`` selects ``columns`` and ``line`` (text) in ``order``. PostgreSQL measures
    each line and keeps a running sum (a window); the first row is always kept, whatever
    its size, so a read always makes progress. Lines leave as bytes (``bytea``): the
    worker never decodes them.
    """
    return (
        f"SELECT {columns}, convert_to(line, 'UTF8') AS line FROM ("  # noqa: S608
        f"SELECT {columns}, line, sum(octet_length(line)) OVER w - octet_length(line) "
        f"AS before FROM ({inner}) i "
        f"WINDOW w AS (ORDER BY {order} ROWS UNBOUNDED PRECEDING)) b "
        f"WHERE before < {budget} ORDER BY {order}"
    )


def bounded(inner: str, columns: str, order: str, budget: str, limit: str) -> str:
    """:func:`within_budget` with a look-ahead: also the first row not kept, without its line.

    A row is kept (``keep``) when it starts under ``budget`` and is among the first
    ``limit``; the first row that is not comes back too, with ``keep`` false and no line,
    so the caller knows that more follow without PostgreSQL sending (or rendering) more.
    """
    return (
        f"SELECT {columns}, keep, CASE WHEN keep THEN convert_to(line, 'UTF8') END AS line "  # noqa: S608
        f"FROM (SELECT {columns}, line, before < {budget} AND rn <= {limit} AS keep, "
        f"before - prev_len AS before_prev FROM (SELECT {columns}, line, "
        f"sum(octet_length(line)) OVER w - octet_length(line) AS before, "
        f"lag(octet_length(line), 1, 0) OVER w AS prev_len, row_number() OVER w AS rn "
        f"FROM ({inner}) i WINDOW w AS (ORDER BY {order} ROWS UNBOUNDED PRECEDING)) b) c "
        f"WHERE before_prev < {budget} ORDER BY {order}"
    )


def next_rows(size: int, count: int, budget: int, cap: int) -> int:
    """Rows to ask for next, given ``count`` rows of ``size`` bytes just read.

    Enough to fill ``budget`` at the average size seen, plus one (the cut needs a row to
    cross the budget), at most ``cap``: PostgreSQL renders few rows past a cut.
    """
    average = max(size / max(count, 1), 1.0)
    return max(1, min(cap, int(budget / average) + 1))


async def collection_id(pg: asyncpg.Connection, name: str) -> int:
    """The collection's id (on the raw connection, inside its snapshot)."""
    found = await pg.fetchval("SELECT id FROM ml_collections WHERE name = $1", name)
    if found is None:
        raise CollectionNotFoundError(name)
    return int(found)


async def count(pg: asyncpg.Connection, name: str, q: DocumentQuery) -> int:
    """How many documents match (the same filters as a listing)."""
    cid = await collection_id(pg, name)
    args = Args()
    _, where = build(cid, q, args)
    statement = await planned(pg, f"SELECT count(*) FROM ml_documents WHERE {where}")  # noqa: S608
    found = await statement.fetchval(*args.values)
    return int(found or 0)
