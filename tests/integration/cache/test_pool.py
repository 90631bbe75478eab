"""A burst larger than the Redis pool, standalone and Sentinel mode, on real servers.

The service runs one worker with ``REDIS_MAX_CONNECTIONS=2``. ``CLIENT PAUSE ... WRITE``
on the (master) Redis holds every write the service sends, so the first two PUTs of a
burst hold both pooled connections and the others must wait for one. The test waits on
what the servers report (the clients Redis holds in a ``SET``, the service's
``http_requests_in_progress``), never on the clock, before it lets Redis go on:

- let go while the waiting requests are within the pool timeout: every PUT succeeds;
- held past the pool timeout: every PUT answers 503 problem+json ``store-unavailable``
  (never 500, never a hang), after having waited, and each is counted as a Redis error.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from services.devstack.redis import RedisServer
from tests.integration.cache.conftest import TokenFactory, cache_env, slug
from tests.support.observe import metric
from tests.support.process import ServiceProcess
from tests.support.sentinel import MASTER_NAME, SentinelSet, wait_until

pytestmark = pytest.mark.integration

POOL = 2  # STRATA_CACHE_REDIS_MAX_CONNECTIONS
BURST = 8  # requests at once: POOL hold a connection, the rest wait for one
# The pool timeout is one socket timeout; long enough that a busy CI machine lets the
# waiting requests through before it runs out in the first test.
SOCKET_TIMEOUT = 3.0
CONNECT_TIMEOUT = 0.5
# A waiting request may get a connection just before its pool timeout, then wait for the
# reply: pool timeout + connect + socket timeout, plus slack for a busy 2-core machine.
BOUND = SOCKET_TIMEOUT + CONNECT_TIMEOUT + SOCKET_TIMEOUT + 1.5
LIMITS = {
    "STRATA_CACHE_REDIS_MAX_CONNECTIONS": str(POOL),
    "STRATA_CACHE_REDIS_SOCKET_TIMEOUT": str(SOCKET_TIMEOUT),
    "STRATA_CACHE_REDIS_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT),
    "STRATA_CACHE_LOG_LEVEL": "WARNING",
}


@dataclass
class Target:
    """A one-worker service and a way to reach the Redis it writes to."""

    service: ServiceProcess
    redis: Callable[[], redis.Redis]


@pytest.fixture(scope="module")
def standalone(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """The service on the module's Redis."""
    tmp: Path = tmp_path_factory.mktemp("pool")
    service = ServiceProcess("cache", cache_env(redis_server, **LIMITS), tmp, workers=1).start()

    def client() -> redis.Redis:
        return redis.Redis(port=redis_server.port, password=redis_server.password)

    yield Target(service, client)
    service.stop()


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The service in Sentinel mode: a master (no replicas needed here), three Sentinels."""
    servers = SentinelSet(replicas=0).start()
    env = {
        **LIMITS,
        "STRATA_CACHE_REDIS_URL": "redis://ignored-in-sentinel-mode:6379/0",
        "STRATA_CACHE_REDIS_SENTINELS": servers.addresses,
        "STRATA_CACHE_REDIS_SENTINEL_MASTER": MASTER_NAME,
        "STRATA_CACHE_REDIS_PASSWORD": servers.password,
        "STRATA_CACHE_REDIS_SENTINEL_PASSWORD": servers.sentinel_password,
    }
    try:
        tmp: Path = tmp_path_factory.mktemp("pool-sentinel")
        service = ServiceProcess("cache", env, tmp, workers=1).start()
        try:
            yield Target(service, lambda: servers.node_at(servers.master_port()).client())
        finally:
            service.stop()
    finally:
        servers.stop()


@pytest.fixture(params=["standalone", "sentinel"])
def target(request: pytest.FixtureRequest) -> Target:
    """Each test runs in both modes."""
    found: Target = request.getfixturevalue(request.param)
    return found


@pytest.fixture(scope="module")
def token(make_token: TokenFactory) -> str:
    """Both cache scopes."""
    return make_token("cache", "cache:read", "cache:write", ttl=3600)


@contextlib.contextmanager
def writes_paused(target: Target) -> Iterator[redis.Redis]:
    """Redis holds every write until the block ends (``CLIENT UNPAUSE``, whatever happens)."""
    with target.redis() as client:
        client.client_pause(120_000, all=False)  # WRITE only: the test's own reads go on
        try:
            yield client
        finally:
            client.client_unpause()


def burst(target: Target, token: str, prefix: str) -> Callable[[], list[tuple[int, float, str]]]:
    """Start BURST PUTs at once (each on its own connection); the result waits for them all.

    Each answer is (status, seconds it took, problem slug or "").
    """
    clients = [
        httpx.Client(
            base_url=target.service.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=BOUND + 10,  # a hang fails the test instead of blocking it
        )
        for _ in range(BURST)
    ]
    for client in clients:  # connected first, so the PUTs race rather than the handshakes
        assert client.get("/livez").status_code == 200

    def put(i: int) -> tuple[int, float, str]:
        started = time.monotonic()
        response = clients[i].put(f"/v1/kv/{prefix}-{i}", json={"value": i})
        took = time.monotonic() - started
        return response.status_code, took, slug(response) if response.status_code >= 400 else ""

    executor = ThreadPoolExecutor(BURST)
    futures = [executor.submit(put, i) for i in range(BURST)]

    def results() -> list[tuple[int, float, str]]:
        try:
            return [future.result() for future in futures]
        finally:
            executor.shutdown()
            for client in clients:
                client.close()

    return results


def wait_until_the_pool_is_full(target: Target, held: redis.Redis) -> None:
    """Every PUT is in the service, and POOL of them are held by Redis: the rest wait."""
    base_url = target.service.base_url
    wait_until(
        "the whole burst in the service",
        lambda: metric(base_url, "http_requests_in_progress", method="PUT") == BURST,
        timeout=SOCKET_TIMEOUT,
        describe=lambda: metric(base_url, "http_requests_in_progress", method="PUT"),
    )

    def held_sets() -> list[dict[str, str]]:
        # Only the service's SETs: Sentinel's PUBLISH on the master is paused too.
        return [c for c in held.client_list() if "b" in c["flags"] and c["cmd"] == "set"]

    wait_until(
        "both pooled connections held by Redis",
        lambda: len(held_sets()) == POOL,
        timeout=SOCKET_TIMEOUT,
        describe=held_sets,
    )


@dataclass
class Outcome:
    """What a burst on a full pool came to."""

    prefix: str  # of the burst's keys: ``<prefix>-<i>``
    results: list[tuple[int, float, str]]  # per PUT, as :func:`burst` answers
    new_errors: float  # Redis SET errors the service counted meanwhile


def burst_on_a_full_pool(target: Target, token: str, *, let_go_first: bool) -> Outcome:
    """Pause Redis writes, start a burst and wait until POOL PUTs are held by Redis and the
    rest wait for a connection. Redis goes on at once (``let_go_first``: the waiting
    requests are still within their pool timeout), or only after every PUT has answered."""
    prefix = f"burst-{uuid.uuid4().hex}"
    errors_before = metric(target.service.base_url, "redis_command_errors_total", command="set")
    with contextlib.ExitStack() as paused:
        held = paused.enter_context(writes_paused(target))
        answers = burst(target, token, prefix)
        wait_until_the_pool_is_full(target, held)
        if let_go_first:
            # Redis goes on: the held PUTs finish and each freed connection serves a waiter.
            paused.close()
        results = answers()
    errors = metric(target.service.base_url, "redis_command_errors_total", command="set")
    return Outcome(prefix, results, errors - errors_before)


def test_a_burst_over_the_pool_waits_and_succeeds_when_it_frees_in_time(
    target: Target, token: str
) -> None:
    outcome = burst_on_a_full_pool(target, token, let_go_first=True)
    assert [status for status, _, _ in outcome.results] == [200] * BURST, outcome.results
    with target.redis() as client:
        stored = client.mget([f"kv:{outcome.prefix}-{i}" for i in range(BURST)])
    assert stored == [str(i).encode() for i in range(BURST)]
    assert outcome.new_errors == 0


def test_a_burst_that_outwaits_the_pool_is_503_store_unavailable(
    target: Target, token: str
) -> None:
    outcome = burst_on_a_full_pool(target, token, let_go_first=False)
    results = outcome.results
    assert [(status, problem) for status, _, problem in results] == [
        (503, "store-unavailable")
    ] * BURST, results
    took = sorted(seconds for _, seconds, _ in results)
    # Every request waited (a pool that raised at once would answer in milliseconds), and
    # none longer than the documented bound.
    assert took[0] > SOCKET_TIMEOUT * 0.9, took
    assert took[-1] < BOUND, took
    assert outcome.new_errors == BURST
