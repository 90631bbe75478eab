"""cache over TLS to a real redis-server (``tls-port`` only: it has no plain-text port) with
a CA made by the test run.

``rediss://`` with the right CA serves, standalone and in Sentinel mode (a master and a
replica serving TLS only, Sentinels reaching them over TLS, and Sentinels serving TLS only
themselves, as the chart's sentinel mode with ``redis.tls.server`` runs them); the wrong CA
fails closed (readiness 503, requests 503 problem+json); and ``rediss://`` against a Redis
without TLS fails rather than going on in plain text.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis

from services.devstack.redis import RedisServer
from tests.integration.cache.conftest import FUNCTIONAL_TIMEOUTS
from tests.support.process import ServiceProcess
from tests.support.sentinel import MASTER_NAME, SentinelSet
from tests.support.testca import TestCa

pytestmark = pytest.mark.integration
TokenFactory = Callable[..., str]


def tls_env(redis: RedisServer, ca_file: str) -> dict[str, str]:
    """Service variables for ``redis`` over TLS, trusting ``ca_file``."""
    return {
        "STRATA_CACHE_REDIS_URL": f"rediss://127.0.0.1:{redis.port}/0",
        "STRATA_CACHE_REDIS_PASSWORD": redis.password or "",
        "STRATA_CACHE_REDIS_TLS_CA_FILE": ca_file,
        "STRATA_CACHE_LOG_LEVEL": "WARNING",
        **FUNCTIONAL_TIMEOUTS,
    }


def _client(service: ServiceProcess, make_token: TokenFactory) -> httpx.Client:
    token = make_token("cache", "cache:read", "cache:write")
    return httpx.Client(
        base_url=service.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def _assert_store_unavailable(service: ServiceProcess, make_token: TokenFactory) -> None:
    with _client(service, make_token) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["redis"] != "ok"
        answer = client.put(f"/v1/kv/tls-{uuid.uuid4().hex[:8]}", json={"value": 1})
        assert answer.status_code == 503
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["type"].endswith("store-unavailable")


def test_rediss_with_the_right_ca_serves(
    redis_tls_server: RedisServer, test_ca: TestCa, tmp_path: Path, make_token: TokenFactory
) -> None:
    env = tls_env(redis_tls_server, test_ca.ca_file)
    with ServiceProcess("cache", env, tmp_path, workers=1).start() as service:
        _serve_and_check(service, make_token)
        with _client(service, make_token) as client:
            key = f"tls-{uuid.uuid4().hex[:8]}"
            counted = client.post(f"/v1/counters/{key}:incr", json={"by": 2})
            assert counted.status_code == 200, counted.text
            assert counted.json()["value"] == 2


def _serve_and_check(service: ServiceProcess, make_token: TokenFactory) -> None:
    with _client(service, make_token) as client:
        assert client.get("/readyz").status_code == 200
        key = f"tls-{uuid.uuid4().hex[:8]}"
        assert client.put(f"/v1/kv/{key}", json={"value": {"a": 1}}).status_code in (200, 201)
        got = client.get(f"/v1/kv/{key}")
        assert got.status_code == 200
        assert got.json()["value"] == {"a": 1}


def _sentinel_env(servers: SentinelSet, test_ca: TestCa, **extra: str) -> dict[str, str]:
    """The cache's environment for a TLS Sentinel set (the URL's host is not used)."""
    return {
        "STRATA_CACHE_REDIS_URL": "rediss://ignored-in-sentinel-mode:6379/0",
        "STRATA_CACHE_REDIS_SENTINELS": servers.addresses,
        "STRATA_CACHE_REDIS_SENTINEL_MASTER": MASTER_NAME,
        "STRATA_CACHE_REDIS_PASSWORD": servers.password,
        "STRATA_CACHE_REDIS_SENTINEL_PASSWORD": servers.sentinel_password,
        "STRATA_CACHE_REDIS_TLS_CA_FILE": test_ca.ca_file,
        "STRATA_CACHE_LOG_LEVEL": "WARNING",
        **FUNCTIONAL_TIMEOUTS,
        **extra,
    }


def test_sentinel_mode_reaches_the_master_over_tls(
    test_ca: TestCa, wrong_ca: TestCa, tmp_path: Path, make_token: TokenFactory
) -> None:
    servers = SentinelSet(replicas=1, tls=test_ca.issue("sentinel-set")).start()
    try:
        env = _sentinel_env(servers, test_ca)
        with ServiceProcess("cache", env, tmp_path, workers=1).start() as service:
            _serve_and_check(service, make_token)
        wrong = {**env, "STRATA_CACHE_REDIS_TLS_CA_FILE": wrong_ca.ca_file}
        with ServiceProcess("cache", wrong, tmp_path, workers=1).start() as service:
            _assert_store_unavailable(service, make_token)
    finally:
        servers.stop()


def test_sentinels_serving_tls_only(
    test_ca: TestCa, tmp_path: Path, make_token: TokenFactory
) -> None:
    """The chart's bundled sentinel mode with redis.tls.server: every port TLS only (the
    directives tests/chart/test_redis_sentinel_tls.py pins). With REDIS_SENTINEL_TLS, as the
    chart sets it, the cache serves; without, the Sentinels have no plain port to answer on."""
    servers = SentinelSet(
        replicas=1, tls=test_ca.issue("sentinel-tls-only"), sentinel_tls=True
    ).start()
    try:
        plain = redis.Redis(port=servers.sentinel_ports[0], socket_timeout=2)
        with plain, pytest.raises(redis.ConnectionError):  # plain text gets no answer
            plain.ping()
        env = _sentinel_env(servers, test_ca, STRATA_CACHE_REDIS_SENTINEL_TLS="true")
        with ServiceProcess("cache", env, tmp_path, workers=1).start() as service:
            _serve_and_check(service, make_token)
        plain_sentinels = {k: v for k, v in env.items() if k != "STRATA_CACHE_REDIS_SENTINEL_TLS"}
        with ServiceProcess("cache", plain_sentinels, tmp_path, workers=1).start() as service:
            _assert_store_unavailable(service, make_token)
    finally:
        servers.stop()


def test_wrong_ca_fails_closed(
    redis_tls_server: RedisServer, wrong_ca: TestCa, tmp_path: Path, make_token: TokenFactory
) -> None:
    env = tls_env(redis_tls_server, wrong_ca.ca_file)
    with ServiceProcess("cache", env, tmp_path, workers=1).start() as service:
        _assert_store_unavailable(service, make_token)


def test_rediss_against_a_redis_without_tls_fails(
    redis_server: RedisServer, test_ca: TestCa, tmp_path: Path, make_token: TokenFactory
) -> None:
    env = tls_env(redis_server, test_ca.ca_file)
    with ServiceProcess("cache", env, tmp_path, workers=1).start() as service:
        _assert_store_unavailable(service, make_token)
