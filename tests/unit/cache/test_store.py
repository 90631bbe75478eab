"""The store against a port nothing listens on: every call is a fast 503, and counted."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from services.cache.api.errors import problem
from services.cache.errors import StoreUnavailableError
from services.cache.settings import CacheSettings
from services.cache.store import CacheStore
from services.common.metrics import Metrics


def test_unreachable_redis_raises_store_unavailable_quickly(settings: CacheSettings) -> None:
    metrics = Metrics("cache")

    async def scenario() -> None:
        store = CacheStore(settings, metrics)
        calls = [
            store.get("k"),
            store.put("k", b"1", 5, only_if_absent=True),
            store.delete("k"),
            store.mget(["a", "b"]),
            store.mset([("a", b"1")], None),
            store.mset([("a", b"1")], 5),
            store.incr("k", 1, None),
            store.counter("k"),
        ]
        for call in calls:
            started = time.monotonic()
            with pytest.raises(StoreUnavailableError) as caught:
                await call
            assert time.monotonic() - started < settings.store_timeout
            answered = problem(caught.value)
            assert answered is not None
            assert answered.status == 503
            assert answered.slug == "store-unavailable"
            assert answered.headers == {"Retry-After": "1"}
        with pytest.raises(RedisConnectionError):  # readiness names Redis's own error
            await store.ping()
        await store.close()

    asyncio.run(scenario())
    assert (
        metrics.registry.get_sample_value(
            "redis_command_errors_total", {"service": "cache", "command": "mset"}
        )
        == 2
    )
    assert (
        metrics.registry.get_sample_value(
            "redis_command_duration_seconds_count", {"service": "cache", "command": "get"}
        )
        == 1
    )


def test_hung_redis_and_a_full_pool_answer_within_the_bound() -> None:
    # A socket that accepts connections (kernel backlog) but never answers: a hung Redis.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        port = hung.getsockname()[1]
        settings = CacheSettings(
            environment="development",
            redis_url=f"redis://127.0.0.1:{port}/0",
            redis_socket_timeout=0.2,
            redis_connect_timeout=0.2,
            redis_max_connections=1,
        )
        metrics = Metrics("cache")

        async def scenario() -> list[float]:
            store = CacheStore(settings, metrics)

            async def timed() -> float:
                started = time.monotonic()
                with pytest.raises(StoreUnavailableError):
                    await store.get("k")
                return time.monotonic() - started

            # Three callers, one connection: one waits on Redis, two queue for the connection.
            elapsed = await asyncio.gather(timed(), timed(), timed())
            await store.close()
            return list(elapsed)

        elapsed = asyncio.run(scenario())
    bound = settings.store_timeout + settings.redis_socket_timeout
    assert all(0.15 < e < bound + 0.2 for e in elapsed), elapsed
    assert (
        metrics.registry.get_sample_value(
            "redis_command_errors_total", {"service": "cache", "command": "get"}
        )
        == 3
    )
