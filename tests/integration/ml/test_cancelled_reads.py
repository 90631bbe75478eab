"""A read cancelled mid-statement (its client went away, a timeout) leaves no busy connection
in the pool: the next reads on the same pool get answers, not "another operation is in
progress" (which would be a 500)."""

from __future__ import annotations

import asyncio

import pytest

from services.devstack.postgres import PostgresServer
from services.ml.store.engine import Store
from tests.integration.ml.conftest import settings_for

pytestmark = pytest.mark.integration

SLOW = "SELECT pg_sleep(30) AS slept, 'strata-cancelled-read' AS tag"


def _running(server: PostgresServer) -> int:
    sql = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%strata-cancelled-read%'"
    sql += " AND state = 'active' AND pid <> pg_backend_pid() AND query NOT LIKE '%pg_stat%'"
    return int(server.psql(sql).strip())


def test_a_cancelled_read_leaves_no_busy_connection(
    postgres_server: PostgresServer, ml_db: dict[str, str]
) -> None:
    # Two connections, no overflow (one is the least settings allow with an export slot):
    # the reads after the cancel go round both, so one of them is the cancelled one.
    env = {"STRATA_ML_POOL_SIZE": "2", "STRATA_ML_MAX_OVERFLOW": "0"}
    settings = settings_for({**ml_db, **env, "STRATA_ML_EXPORT_MAX_CONCURRENT": "1"})

    async def scenario() -> None:
        store = Store(settings)
        try:
            task = asyncio.create_task(store.fetch_one(SLOW))
            for _ in range(400):  # bounded: until the server runs the statement
                if await asyncio.to_thread(_running, postgres_server):
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the slow read never started on the server")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            for n in range(4):
                row = await asyncio.wait_for(store.fetch_one("SELECT $1::int + 1 AS n", n), 10)
                assert row is not None and row["n"] == n + 1
        finally:
            await store.close()

    asyncio.run(scenario())
