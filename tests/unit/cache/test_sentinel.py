"""Sentinel mode without servers: settings, and the store when no Sentinel answers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from pydantic import ValidationError
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.sentinel import (
    MasterNotFoundError,
    SentinelConnectionPool,
    SentinelManagedSSLConnection,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from services.cache.errors import StoreUnavailableError
from services.cache.sentinel import FollowingPool, MasterFollower, pool_options
from services.cache.settings import CacheSettings, parse_address
from services.cache.store import CacheStore
from services.common.metrics import Metrics


def sentinel_settings(**extra: object) -> CacheSettings:
    """Development settings naming Sentinels on ports nothing listens on."""
    values: dict[str, object] = {
        "environment": "development",
        "redis_sentinels": "127.0.0.1:9,[::1]:9",
    }
    values.update(extra)
    return CacheSettings(**values)  # type: ignore[arg-type]


def test_sentinels_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "sentinel-password"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("STRATA_CACHE_ENVIRONMENT", "development")
    monkeypatch.setenv("STRATA_CACHE_REDIS_SENTINELS", " a.example:26379, b:1 ,")
    monkeypatch.setenv("STRATA_CACHE_REDIS_SENTINEL_MASTER", "cache")
    monkeypatch.setenv("STRATA_CACHE_REDIS_SENTINEL_PASSWORD_FILE", str(secret))
    settings = CacheSettings()
    assert settings.sentinel_addresses == [("a.example", 26379), ("b", 1)]
    assert settings.redis_sentinel_master == "cache"
    assert settings.sentinel_options()["password"] == "s3cret"
    assert settings.redis_sentinel_check_interval == 0.5


def test_standalone_is_the_default() -> None:
    settings = CacheSettings(environment="development")
    assert settings.redis_sentinels == []
    assert settings.sentinel_addresses == []


@pytest.mark.parametrize("bad", ["nohost", "host:", ":26379", "host:port", "host:70000"])
def test_malformed_sentinel_addresses_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="host:port"):
        sentinel_settings(redis_sentinels=bad)


def test_ipv6_sentinel_address() -> None:
    assert parse_address("[::1]:26379") == ("::1", 26379)


def test_sentinel_mode_refuses_unix_sockets() -> None:
    with pytest.raises(ValidationError, match="not unix://"):
        sentinel_settings(redis_url="unix:///tmp/redis.sock")


def test_rediss_master_connections_use_tls_in_sentinel_mode(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("pem")
    settings = sentinel_settings(redis_url="rediss://x:6379/2", redis_tls_ca_file=str(ca))
    options = pool_options(settings)
    assert options["ssl"] is True
    assert "connection_class" not in options  # the URL's SSLConnection would drop Sentinel's
    assert options["ssl_ca_certs"] == str(ca)
    # Connections go to resolved IPs: the chain is verified, the name cannot be.
    assert options["ssl_check_hostname"] is False
    follower = MasterFollower(settings, Metrics("cache"))
    assert follower.pool.connection_class is SentinelManagedSSLConnection
    assert follower.pool.connection_kwargs["ssl_ca_certs"] == str(ca)
    # The Sentinels themselves stay plain unless redis_sentinel_tls says otherwise.
    assert "ssl" not in settings.sentinel_options()


def test_sentinels_over_tls_share_the_ca(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("pem")
    settings = sentinel_settings(redis_sentinel_tls=True, redis_tls_ca_file=str(ca))
    options = settings.sentinel_options()
    assert (options["ssl"], options["ssl_ca_certs"]) == (True, str(ca))
    assert "ssl" not in pool_options(settings)  # redis:// data connections stay plain


def test_master_pool_takes_the_urls_database_and_credentials_not_its_host() -> None:
    settings = sentinel_settings(
        redis_url="redis://u:p@somewhere:1234/3", redis_password="explicit"
    )
    options = pool_options(settings)
    assert "host" not in options and "port" not in options
    assert (options["db"], options["username"], options["password"]) == (3, "u", "explicit")
    assert options["socket_timeout"] == settings.redis_socket_timeout


def test_no_sentinel_answers_every_call_is_a_fast_503_and_not_ready() -> None:
    settings = sentinel_settings(redis_connect_timeout=0.2, redis_socket_timeout=0.2)
    metrics = Metrics("cache")

    async def scenario() -> None:
        store = CacheStore(settings, metrics)
        await store.start()  # finds no master, starts anyway
        try:
            for call in (store.get("k"), store.put("k", b"1", None, only_if_absent=False)):
                started = time.monotonic()
                with pytest.raises(StoreUnavailableError):
                    await call
                assert time.monotonic() - started < settings.store_timeout
            with pytest.raises(MasterNotFoundError):
                await store.ping()
        finally:
            await store.close()

    asyncio.run(scenario())
    errors = metrics.registry.get_sample_value("redis_sentinel_errors_total", {"service": "cache"})
    assert errors is not None and errors >= 1
    assert (
        metrics.registry.get_sample_value("redis_master_changes_total", {"service": "cache"}) == 0
    )


def test_the_master_pool_is_sentinels_and_blocking_at_once() -> None:
    """The MRO composes both redis-py pools: a full pool makes the next caller wait, a
    release wakes it, and the woken caller connects through Sentinel's connection class."""
    settings = sentinel_settings(redis_max_connections=1, redis_socket_timeout=0.3)
    # What each base must contribute (a redis-py upgrade that moves a method shows here).
    assert FollowingPool.__mro__[1:3] == (SentinelConnectionPool, BlockingConnectionPool)
    assert FollowingPool.get_connection is BlockingConnectionPool.get_connection
    assert FollowingPool.release is BlockingConnectionPool.release
    assert FollowingPool.reset is SentinelConnectionPool.reset

    async def scenario() -> None:
        follower = MasterFollower(settings, Metrics("cache"))
        pool = follower.pool
        assert (pool.max_connections, pool.timeout) == (1, settings.pool_timeout)
        held = pool.get_available_connection()  # the only connection, taken without I/O
        started = time.monotonic()
        with pytest.raises(RedisConnectionError, match="No connection available"):
            await pool.get_connection()
        assert 0.25 < time.monotonic() - started < 0.3 + 0.5  # waited the pool timeout
        waiter = asyncio.create_task(pool.get_connection())
        await asyncio.sleep(0)  # one step: the waiter now waits on the pool's condition
        assert not waiter.done()
        await pool.release(held)
        # Woken, it connects as a Sentinel-managed connection: to the follower's master
        # address, and none is known (no Sentinel answers here).
        with pytest.raises(MasterNotFoundError):
            await waiter
        assert list(pool._in_use_connections) == []  # the failed connect gave it back
        await pool.disconnect()

    asyncio.run(scenario())
