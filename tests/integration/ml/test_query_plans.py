"""Which reads PostgreSQL plans for their values and which keep one cached plan.

A filtered read (count, page, sample, export) is prepared afresh each time
(``store.query.planned``), so its plan is chosen with its filter's values. The point read
keeps asyncpg's statement cache and gets PostgreSQL's generic plan after five runs: its
plan is the same for any id, and planning it every time was half of PostgreSQL's time per
read. ``pg_prepared_statements`` counts each statement's generic and custom plans.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.devstack.postgres import PostgresServer
from services.ml.params import DocumentQuery
from services.ml.store import point, query
from services.ml.store.engine import Store
from tests.integration.ml.conftest import connect, settings_for

pytestmark = pytest.mark.integration

NAME = "plans"
COMMON = 2000
EVERYONE = DocumentQuery(filter={"group": 0})
RARE = DocumentQuery(filter={"group": 1})
RUNS = 8
_GIN_SCANS = "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'ix_ml_documents_data'"
_PLANS = (
    "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements "
    "WHERE statement LIKE $1"
)


async def _plans(pg: Any, like: str) -> list[tuple[str, int, int]]:
    return [(r[0], r[1], r[2]) for r in await pg.fetch(_PLANS, like)]


@pytest.fixture(scope="module")
def store_env(postgres_server: PostgresServer, ml_db: dict[str, str]) -> dict[str, str]:
    """The module's database with one collection of ``COMMON`` documents and one rare one.

    Reads one after the other use one connection of the pool (it opens connections on
    demand), so its statement cache.
    """
    asyncio.run(_load(ml_db))
    postgres_server.psql("ANALYZE ml_documents", ml_db["STRATA_ML_DATABASE_NAME"])
    return {**ml_db, "STRATA_ML_POOL_SIZE": "2", "STRATA_ML_EXPORT_MAX_CONCURRENT": "1"}


async def _load(env: dict[str, str]) -> None:
    conn = await connect(env)
    try:
        cid = await conn.fetchval(
            "INSERT INTO ml_collections (name) VALUES ($1) RETURNING id", NAME
        )
        records = [(cid, f"d{i:07d}", '{"group": 0}') for i in range(COMMON)]
        records.append((cid, "rare", '{"group": 1}'))
        await conn.copy_records_to_table(
            "ml_documents", records=records, columns=["collection_id", "id", "data"]
        )
    finally:
        await conn.close()


async def _gin_scans(pg: Any) -> int:
    # The flush happens before this connection's next answer: the figures are current.
    await pg.execute("SELECT pg_stat_force_next_flush()")
    return int(await pg.fetchval(_GIN_SCANS))


def test_a_filtered_read_is_planned_for_its_values_every_time(
    store_env: dict[str, str],
) -> None:
    async def scenario() -> int:
        store = Store(settings_for(store_env))
        try:
            async with store.raw(read=True) as pg:
                # Five runs of each value: PostgreSQL's plan cache decides after five.
                for _ in range(5):
                    assert await query.count(pg, NAME, RARE) == 1
                    assert await query.count(pg, NAME, EVERYONE) == COMMON
                before = await _gin_scans(pg)
                for _ in range(3):
                    assert await query.count(pg, NAME, EVERYONE) == COMMON
                return await _gin_scans(pg) - before
        finally:
            await store.close()

    # Planned for its value, the filter that matches every document never goes through
    # the containment index (a table or keyset scan is cheaper); one cached generic plan
    # would use it for every value.
    assert asyncio.run(scenario()) == 0


def test_the_point_read_keeps_one_statement_and_a_generic_plan(
    store_env: dict[str, str],
) -> None:
    async def scenario() -> list[tuple[str, int, int]]:
        store = Store(settings_for(store_env))
        try:
            for n in range(RUNS):
                doc = await point.get(store, NAME, f"d{n:07d}")
                assert doc["id"] == f"d{n:07d}"
            async with store.raw(read=True) as pg:
                return await _plans(pg, "%FROM ml_collections c LEFT JOIN ml_documents%")
        finally:
            await store.close()

    found = asyncio.run(scenario())
    assert len(found) == 1, found
    _, generic, custom = found[0]
    # PostgreSQL plans the first five runs with their values, then settles on the
    # generic plan (a session forcing custom plans would show eight custom ones).
    assert generic + custom == RUNS
    assert generic > 0, found
