"""Redis down or hung: 503 store-unavailable within the timeout bound, then recovery."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.devstack.redis import RedisServer
from tests.integration.cache.conftest import TokenFactory, cache_env, slug
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration

SOCKET_TIMEOUT = CONNECT_TIMEOUT = 0.3
# connect + one reply, plus scheduling slack on a busy 2-core CI machine
BOUND = SOCKET_TIMEOUT + CONNECT_TIMEOUT + 1.0


@pytest.fixture(scope="module")
def own_redis() -> Iterator[RedisServer]:
    """A Redis only this module stops and starts."""
    server = RedisServer(password="outage-test").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def outage_service(
    own_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """A cache server on the module's Redis, with short timeouts."""
    env = cache_env(
        own_redis,
        STRATA_CACHE_REDIS_SOCKET_TIMEOUT=str(SOCKET_TIMEOUT),
        STRATA_CACHE_REDIS_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT),
        STRATA_CACHE_RETRY_AFTER_SECONDS="2",
    )
    service = ServiceProcess("cache", env, tmp_path_factory.mktemp("outage"), workers=2).start()
    yield service
    service.stop()


@pytest.fixture
def client(outage_service: ServiceProcess, make_token: TokenFactory) -> Iterator[httpx.Client]:
    token = make_token("cache", "cache:read", "cache:write")
    with httpx.Client(
        base_url=outage_service.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as client:
        yield client


CALLS = [
    ("GET", "/v1/kv/o", None),
    ("PUT", "/v1/kv/o", {"value": 1}),
    ("DELETE", "/v1/kv/o", None),
    ("POST", "/v1/kv:mget", {"keys": ["o"]}),
    ("POST", "/v1/kv:mset", {"items": {"o": 1}, "ttl": 60}),
    ("POST", "/v1/counters/o:incr", {"by": 1, "ttl": 60}),
    ("GET", "/v1/counters/o", None),
]


def assert_all_unavailable(client: httpx.Client) -> None:
    for method, path, body in CALLS * 2:  # twice: each worker likely answers some
        started = time.monotonic()
        response = client.request(method, path, json=body)
        elapsed = time.monotonic() - started
        assert response.status_code == 503, (method, path, response.text)
        assert slug(response) == "store-unavailable"
        assert response.headers["retry-after"] == "2"
        assert elapsed < BOUND, (method, path, elapsed)
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"] != "ok"
    assert client.get("/livez").status_code == 200


def wait_recovered(client: httpx.Client, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "readyz did not recover"
        time.sleep(0.1)
    for method, path, body in CALLS * 2:
        response = client.request(method, path, json=body)
        assert response.status_code in (200, 204, 404), (method, path, response.text)


def redis_errors(client: httpx.Client, command: str) -> float:
    """``redis_command_errors_total`` for one command, summed over the workers."""
    prefix = f'redis_command_errors_total{{command="{command}",service="cache"}}'
    lines = [ln for ln in client.get("/metrics").text.splitlines() if ln.startswith(prefix)]
    return sum(float(ln.split()[-1]) for ln in lines)


def test_redis_stopped_then_started(client: httpx.Client, own_redis: RedisServer) -> None:
    assert client.put("/v1/kv/o", json={"value": "before"}).status_code == 200
    own_redis.stop(remove=False)
    try:
        assert_all_unavailable(client)
        assert redis_errors(client, "get") >= 1  # the outage shows in the metrics
    finally:
        own_redis.start()
    wait_recovered(client)
    assert client.put("/v1/kv/o", json={"value": "after"}).status_code == 200
    assert client.get("/v1/kv/o").json()["value"] == "after"


def test_redis_hung_answers_within_the_socket_timeout(
    client: httpx.Client, own_redis: RedisServer
) -> None:
    assert client.put("/v1/kv/o", json={"value": "before"}).status_code == 200
    assert own_redis.process is not None
    own_redis.process.send_signal(signal.SIGSTOP)  # accepts connections, never answers
    try:
        assert_all_unavailable(client)
    finally:
        own_redis.process.send_signal(signal.SIGCONT)
    wait_recovered(client)


def test_service_starts_while_redis_is_down(
    own_redis: RedisServer, make_token: TokenFactory, tmp_path: Path
) -> None:
    headers = {"Authorization": f"Bearer {make_token('cache', 'cache:read')}"}
    service = ServiceProcess("cache", cache_env(own_redis), tmp_path, workers=1)
    own_redis.stop(remove=False)
    try:
        service.start()
        with httpx.Client(base_url=service.base_url, headers=headers, timeout=10) as client:
            response = client.get("/v1/kv/o")
            assert response.status_code == 503
            assert slug(response) == "store-unavailable"
            assert client.get("/readyz").status_code == 503
            own_redis.start()
            wait_recovered_read(client)
    finally:
        if own_redis.process is None:
            own_redis.start()
        service.stop()


def wait_recovered_read(client: httpx.Client, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "readyz did not recover"
        time.sleep(0.1)
    assert client.get("/v1/kv/o").status_code in (200, 404)
