"""The cache service as a real Sanic server (2 workers) on the module's own real Redis.

Each test module gets its own Redis (``redis_server``, tests/integration/conftest.py) and
its own service on it, so no module sees another's keys, scripts or connections, and the
modules pass in any order and alone. Tests still use unique keys within a module.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from services.devstack.redis import RedisServer
from tests.support.http import ClientFactory, client_factory
from tests.support.process import ServiceProcess

TokenFactory = Callable[..., str]


def cache_env(redis: RedisServer, **extra: str) -> dict[str, str]:
    """Service variables for ``redis``; the password goes in its own variable, not the URL."""
    return {
        "STRATA_CACHE_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
        "STRATA_CACHE_REDIS_PASSWORD": redis.password or "",
        "STRATA_CACHE_LOG_LEVEL": "WARNING",
        **extra,
    }


#: Redis timeouts of the service the functional modules share. The defaults (0.5 s) are
#: wall-clock bounds on the worker's event loop, and a loaded test machine stalls that loop
#: about as long: on the shared 2-core machine, at nice 10 under load 14-16, an idle loop
#: once went 0.48 s without running (p99.9 75 ms), and a worker busy with a burst (the
#: set-if-absent race: 12 requests each) stalls longer. A Redis reply that arrived during
#: a stall then times out on resume (the timer runs before the socket is read) and the
#: request answers 503, as the service promises. That once failed the race with a 503
#: (freezing the service 0.8 s mid-burst gave 503s in 2 of 3 rounds with the defaults,
#: none in 3 with these). These modules test what the store does, not how fast; the
#: latency bounds keep their own short timeouts (test_outage, test_pool, test_failover,
#: tests/unit/cache).
FUNCTIONAL_TIMEOUTS = {
    "STRATA_CACHE_REDIS_SOCKET_TIMEOUT": "5",
    "STRATA_CACHE_REDIS_CONNECT_TIMEOUT": "5",
}


@pytest.fixture(scope="module")
def cache_service(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """The module's server for the read/write tests, on the module's own Redis."""
    tmp: Path = tmp_path_factory.mktemp("cache")
    # Small limits so the limit tests stay small: 50 keys per batch, 1 KiB per value.
    env = cache_env(
        redis_server,
        STRATA_CACHE_MAX_BATCH="50",
        STRATA_CACHE_MAX_VALUE_BYTES="1024",
        **FUNCTIONAL_TIMEOUTS,
    )
    service = ServiceProcess("cache", env, tmp, workers=2).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def rw_token(make_token: TokenFactory) -> str:
    """A token with both cache scopes, valid for an hour from the module's start.

    Minted per module, not per session: a session-wide token expired mid-run whenever the
    modules before took longer than its lifetime, failing whichever modules came late.
    """
    return make_token("cache", "cache:read", "cache:write", ttl=3600)


@pytest.fixture
def new_client(cache_service: ServiceProcess, rw_token: str) -> Iterator[ClientFactory]:
    """Make clients of the shared server; ``token=None`` sends no Authorization header."""
    with client_factory(cache_service.base_url, rw_token, timeout=10) as make:
        yield make


@pytest.fixture
def client(new_client: ClientFactory) -> httpx.Client:
    """A client with read and write scopes."""
    return new_client()


@pytest.fixture
def key() -> str:
    """A key no other test uses."""
    return f"t-{uuid.uuid4().hex}"


def slug(response: httpx.Response) -> str:
    """The problem slug of an error response (asserting it is problem+json)."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body = response.json()
    assert body["status"] == response.status_code
    prefix = "urn:strata:problem:"
    assert body["type"].startswith(prefix)
    return str(body["type"][len(prefix) :])


#: Lines the Sentinel failover tests print in the summary (test_failover.py).
FAILOVER_REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show the failover numbers (failed requests, lost writes, timings) after the run."""
    if FAILOVER_REPORT:
        terminalreporter.section("cache failover (Redis Sentinel)")
        for line in FAILOVER_REPORT:
            terminalreporter.write_line(line)
