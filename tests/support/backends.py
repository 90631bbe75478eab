"""A service's PostgreSQL connections seen from the server side: counted, and all cut at
once as a restart or a failover cuts them (``pg_terminate_backend``)."""

from __future__ import annotations

import time

from services.devstack.postgres import PostgresServer


def backends(pg: PostgresServer, application_name: str) -> int:
    """How many connections ``application_name`` holds open on ``pg``."""
    sql = f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{application_name}'"
    return int(pg.psql(sql).strip())


def terminate_all(pg: PostgresServer, application_name: str, timeout: float = 10.0) -> None:
    """Terminate every connection of ``application_name`` and wait until PostgreSQL has
    ended them (termination is asynchronous: the backends exit a moment later)."""
    assert backends(pg, application_name) > 0, "the pool holds no connection to drop"
    pg.psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE application_name = '{application_name}'"
    )
    deadline = time.monotonic() + timeout
    while backends(pg, application_name) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backends(pg, application_name) == 0
