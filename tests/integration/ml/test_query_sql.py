"""The document-read SQL run by PostgreSQL itself, in process: which rows and what shape.

tests/unit/ml/test_store_sql.py reads the SQL text; these run it on this module's database
(as the service's runtime role) and check what comes back: the filter's containment, the
strict time range, the keyset position, projections (nested, missing, wider than one
``jsonb_build_object`` call), the byte budget and its look-ahead row, counts and unknown
collections. The rows have fixed ids and timestamps, written as the owner.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
import pytest

from services.ml.params import DocumentQuery, fields
from services.ml.store.query import (
    Args,
    bounded,
    build,
    collection_id,
    count,
    next_rows,
    within_budget,
)
from tests.integration.ml.conftest import OWNER, OWNER_PASSWORD

pytestmark = pytest.mark.integration
T = TypeVar("T")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
# id -> (seconds after T0, data). b and c share a timestamp: the keyset breaks ties by id.
DOCS: dict[str, tuple[int, dict[str, Any]]] = {
    "a": (0, {"g": 1, "t": "x", "n": {"deep": {"v": 1}, "w": 2}}),
    "b": (10, {"g": 2, "t": "y"}),
    "c": (10, {"g": 1, "t": "z", "n": {"w": 3}}),
    "d": (20, {"g": 1, "list": [1, 2]}),
}


async def _connect(env: dict[str, str], owner: bool = False) -> asyncpg.Connection:
    return await asyncpg.connect(
        host=env["STRATA_ML_DATABASE_HOST"],
        port=int(env["STRATA_ML_DATABASE_PORT"]),
        user=OWNER if owner else env["STRATA_ML_DATABASE_USER"],
        password=OWNER_PASSWORD if owner else env["STRATA_ML_DATABASE_PASSWORD"],
        database=env["STRATA_ML_DATABASE_NAME"],
    )


@pytest.fixture(scope="module")
def books(ml_db: dict[str, str]) -> tuple[str, str]:
    """Two collections: ``DOCS`` in the first, one look-alike document in the second."""
    name, other = f"q-{uuid.uuid4().hex[:10]}", f"q-{uuid.uuid4().hex[:10]}"

    async def load() -> None:
        conn = await _connect(ml_db, owner=True)
        try:
            cid = await conn.fetchval(
                "INSERT INTO ml_collections (name) VALUES ($1) RETURNING id", name
            )
            oid = await conn.fetchval(
                "INSERT INTO ml_collections (name) VALUES ($1) RETURNING id", other
            )
            rows = [
                (cid, doc_id, json.dumps(data), T0 + timedelta(seconds=at))
                for doc_id, (at, data) in DOCS.items()
            ]
            rows.append((oid, "a", json.dumps({"g": 1}), T0))
            await conn.executemany(
                "INSERT INTO ml_documents (collection_id, id, data, created_at) "
                "VALUES ($1, $2, $3::jsonb, $4)",
                rows,
            )
        finally:
            await conn.close()

    asyncio.run(load())
    return name, other


def on_db(env: dict[str, str], work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run ``work`` on a runtime-role connection (what the service holds)."""

    async def main() -> T:
        conn = await _connect(env)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(main())


def select(env: dict[str, str], name: str, q: DocumentQuery) -> list[tuple[str, Any]]:
    """(id, projected data) of the matching documents, in keyset order."""

    async def work(conn: asyncpg.Connection) -> list[tuple[str, Any]]:
        cid = await collection_id(conn, name)
        args = Args()
        data, where = build(cid, q, args)
        rows = await conn.fetch(
            f"SELECT id, ({data})::text AS data FROM ml_documents "
            f"WHERE {where} ORDER BY created_at, id",
            *args.values,
        )
        return [(r["id"], json.loads(r["data"])) for r in rows]

    return on_db(env, work)


def ids(rows: list[tuple[str, Any]]) -> list[str]:
    return [doc_id for doc_id, _ in rows]


def test_everything_of_one_collection_in_order(ml_db, books) -> None:
    rows = select(ml_db, books[0], DocumentQuery())
    assert rows == [(doc_id, data) for doc_id, (_, data) in DOCS.items()]
    assert ids(select(ml_db, books[1], DocumentQuery())) == ["a"]


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ({"g": 1}, ["a", "c", "d"]),
        ({"g": 1, "t": "z"}, ["c"]),
        ({"n": {"w": 3}}, ["c"]),
        ({"list": [2]}, ["d"]),  # containment, as the GIN index serves it
        ({"g": 3}, []),
        ({}, ["a", "b", "c", "d"]),
    ],
)
def test_the_filter_is_jsonb_containment(ml_db, books, filter_, expected) -> None:
    assert ids(select(ml_db, books[0], DocumentQuery(filter=filter_))) == expected


@pytest.mark.parametrize(
    ("after", "before", "expected"),
    [
        (0, None, ["b", "c", "d"]),  # strictly after: the bound itself is out
        (None, 20, ["a", "b", "c"]),  # strictly before
        (0, 20, ["b", "c"]),
        (-1, 21, ["a", "b", "c", "d"]),
        (10, 10, []),
    ],
)
def test_the_time_range_is_strict(ml_db, books, after, before, expected) -> None:
    q = DocumentQuery(
        created_after=None if after is None else T0 + timedelta(seconds=after),
        created_before=None if before is None else T0 + timedelta(seconds=before),
    )
    assert ids(select(ml_db, books[0], q)) == expected


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        ((0, "a"), ["b", "c", "d"]),
        ((10, "b"), ["c", "d"]),  # the same timestamp continues by id
        ((10, "c"), ["d"]),
        ((20, "d"), []),
        ((-1, "z"), ["a", "b", "c", "d"]),
    ],
)
def test_the_keyset_position_continues_after_a_row(ml_db, books, position, expected) -> None:
    at, doc_id = position
    q = DocumentQuery(after=(T0 + timedelta(seconds=at), doc_id), filter={})
    assert ids(select(ml_db, books[0], q)) == expected


def test_keyset_and_filter_and_range_combine(ml_db, books) -> None:
    q = DocumentQuery(filter={"g": 1}, after=(T0, "a"), created_before=T0 + timedelta(seconds=20))
    assert ids(select(ml_db, books[0], q)) == ["c"]


def test_fields_project_nested_paths_and_missing_ones_as_null(ml_db, books) -> None:
    rows = dict(select(ml_db, books[0], DocumentQuery(fields=fields("t,n.deep.v,n.w,nope"))))
    assert rows["a"] == {"t": "x", "n": {"deep": {"v": 1}, "w": 2}, "nope": None}
    assert rows["b"] == {"t": "y", "n": {"deep": {"v": None}, "w": None}, "nope": None}
    assert rows["c"] == {"t": "z", "n": {"deep": {"v": None}, "w": 3}, "nope": None}


def test_a_whole_key_wins_over_its_sub_paths(ml_db, books) -> None:
    rows = dict(select(ml_db, books[0], DocumentQuery(fields=fields("n,n.w"))))
    assert rows["a"] == {"n": {"deep": {"v": 1}, "w": 2}}


@pytest.mark.parametrize("width", [50, 51, 64])
def test_projections_wider_than_one_call_keep_every_key(ml_db, books, width) -> None:
    wanted = ["g", *[f"k{i}" for i in range(width - 1)]]
    rows = dict(select(ml_db, books[0], DocumentQuery(fields=fields(",".join(wanted)))))
    assert rows["c"] == {"g": 1, **dict.fromkeys(wanted[1:])}


def lines(env: dict[str, str], sql: str, *values: Any) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` as tuples (bytes lines decoded)."""

    async def work(conn: asyncpg.Connection) -> list[tuple[Any, ...]]:
        found = await conn.fetch(sql, *values)
        return [
            tuple(bytes(v).decode() if isinstance(v, bytes | memoryview) else v for v in row)
            for row in found
        ]

    return on_db(env, work)


# Five lines of 10, 20, 30, 40 and 50 bytes.
SIZED = "SELECT k, repeat('x', k * 10) AS line FROM generate_series(1, 5) k"


@pytest.mark.parametrize(
    ("budget", "kept"),
    [
        (1, [1]),  # the first row always: a read makes progress
        (10, [1]),
        (11, [1, 2]),  # 10 bytes before row 2: under 11
        (30, [1, 2]),  # 30 before row 3: not under 30
        (31, [1, 2, 3]),
        (10_000, [1, 2, 3, 4, 5]),
    ],
)
def test_within_budget_keeps_rows_that_start_under_it(ml_db, budget, kept) -> None:
    rows = lines(ml_db, within_budget(SIZED, "k", "k", "$1::bigint"), budget)
    assert [k for k, _ in rows] == kept
    assert all(line == "x" * (k * 10) for k, line in rows)


@pytest.mark.parametrize(
    ("budget", "limit", "kept", "ahead"),
    [
        (31, 10, [1, 2, 3], 4),  # row 4 starts at 60: returned unkept, without its line
        (10_000, 2, [1, 2], 3),  # the row limit cuts first
        (1, 10, [1], 2),
        (10_000, 10, [1, 2, 3, 4, 5], None),  # all kept: nothing to look ahead to
    ],
)
def test_bounded_adds_one_look_ahead_row_without_its_line(
    ml_db, budget, limit, kept, ahead
) -> None:
    # As the listing asks: one row more than the limit, so that a cut by count shows too.
    inner = f"{SIZED} ORDER BY k LIMIT $2::bigint + 1"
    rows = lines(ml_db, bounded(inner, "k", "k", "$1::bigint", "$2::bigint"), budget, limit)
    assert [k for k, keep, _ in rows if keep] == kept
    assert all(line == "x" * (k * 10) for k, keep, line in rows if keep)
    unkept = [(k, line) for k, keep, line in rows if not keep]
    assert unkept == ([] if ahead is None else [(ahead, None)])


def test_next_rows_sizes_the_next_fetch() -> None:
    assert next_rows(1000, 10, 1000, 50) == 11  # 100 B a row: 10 fill it, one crosses
    assert next_rows(1000, 10, 1000, 5) == 5
    assert next_rows(0, 0, 100, 50) == 50
    assert next_rows(0, 10, 100, 500) == 101  # empty lines count as 1 byte each
    assert next_rows(100, 1, 1000, 50) == 11  # one row seen: its size is the average
    assert next_rows(10_000, 1, 100, 50) == 1


def test_count_applies_the_listing_filters(ml_db, books) -> None:
    async def work(conn: asyncpg.Connection) -> list[int]:
        return [
            await count(conn, books[0], DocumentQuery()),
            await count(conn, books[0], DocumentQuery(filter={"g": 1})),
            await count(conn, books[0], DocumentQuery(created_after=T0)),
            await count(conn, books[1], DocumentQuery()),
            await count(conn, books[0], DocumentQuery(filter={"g": 3})),
        ]

    assert on_db(ml_db, work) == [4, 3, 3, 1, 0]


def test_an_unknown_collection_is_not_found(ml_db, books) -> None:
    name = f"gone-{uuid.uuid4().hex[:8]}"

    async def work(conn: asyncpg.Connection) -> None:
        with pytest.raises(Exception, match=name) as refused:
            await count(conn, name, DocumentQuery())
        assert getattr(refused.value, "status", 404) == 404

    on_db(ml_db, work)
