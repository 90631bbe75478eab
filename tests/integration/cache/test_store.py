"""The cache store in process against the module's own Redis: what each call does to Redis.

The HTTP tests see the store through a server process; these call it directly (and read
Redis behind its back), so every branch of the store is exercised where a mutation tool
can see it (``make mutation``). Keys are unique per test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import redis

from services.cache.api.errors import problem as edge_problem
from services.cache.errors import CounterOverflowError
from services.cache.settings import CacheSettings
from services.cache.store import CacheStore
from services.common.metrics import Metrics
from services.devstack.redis import RedisServer

pytestmark = pytest.mark.integration
INT64_MAX = 2**63 - 1
T = TypeVar("T")


@pytest.fixture
def settings(redis_server: RedisServer) -> CacheSettings:
    """Settings pointing at the module's own Redis."""
    return CacheSettings(
        environment="development",
        redis_url=f"redis://127.0.0.1:{redis_server.port}/0",
        redis_password=redis_server.password,
    )


@pytest.fixture
def raw(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A plain client, to look at what the store wrote."""
    client = redis.Redis(port=redis_server.port, password=redis_server.password)
    yield client
    client.close()


@pytest.fixture
def key() -> str:
    """A key no other test uses."""
    return f"st-{uuid.uuid4().hex}"


Scenario = Callable[[CacheStore], Awaitable[T]]


def run(settings: CacheSettings, scenario: Scenario[T], metrics: Metrics | None = None) -> T:
    """Run ``scenario`` with a fresh store (and pool) on its own event loop."""

    async def main() -> T:
        store = CacheStore(settings, metrics or Metrics("cache"))
        await store.start()
        try:
            return await scenario(store)
        finally:
            await store.close()

    return asyncio.run(main())


def test_put_then_get_returns_the_text_and_no_ttl(settings, raw, key) -> None:
    async def scenario(store: CacheStore) -> Any:
        assert await store.put(key, b'{"a": 1}', None, only_if_absent=False) is True
        return await store.get(key)

    assert run(settings, scenario) == (b'{"a": 1}', None)
    assert raw.get(f"kv:{key}") == b'{"a": 1}'
    assert raw.ttl(f"kv:{key}") == -1


def test_get_of_an_absent_key_is_none(settings, key) -> None:
    async def scenario(store: CacheStore) -> Any:
        return await store.get(key)

    assert run(settings, scenario) is None


def test_a_ttl_is_stored_and_reported(settings, raw, key) -> None:
    async def scenario(store: CacheStore) -> Any:
        await store.put(key, b"1", 100, only_if_absent=False)
        return await store.get(key)

    value, ttl = run(settings, scenario)
    assert value == b"1"
    assert ttl is not None
    assert 98 <= ttl <= 100
    assert 98 <= raw.ttl(f"kv:{key}") <= 100


def test_put_replaces_value_and_ttl(settings, raw, key) -> None:
    raw.set(f"kv:{key}", b"old", ex=100)

    async def scenario(store: CacheStore) -> Any:
        assert await store.put(key, b"new", None, only_if_absent=False) is True
        return await store.get(key)

    assert run(settings, scenario) == (b"new", None)
    assert raw.ttl(f"kv:{key}") == -1


def test_only_if_absent_writes_once(settings, raw, key) -> None:
    async def scenario(store: CacheStore) -> Any:
        first = await store.put(key, b"1", 100, only_if_absent=True)
        second = await store.put(key, b"2", None, only_if_absent=True)
        return first, second

    assert run(settings, scenario) == (True, False)
    assert raw.get(f"kv:{key}") == b"1"
    assert raw.ttl(f"kv:{key}") > 0  # the refused write left the TTL alone too


def test_delete_says_whether_there_was_a_value(settings, raw, key) -> None:
    raw.set(f"kv:{key}", b"1")

    async def scenario(store: CacheStore) -> Any:
        return await store.delete(key), await store.delete(key)

    assert run(settings, scenario) == (True, False)
    assert raw.exists(f"kv:{key}") == 0


def test_mget_answers_in_order_with_none_for_absent(settings, raw, key) -> None:
    raw.set(f"kv:{key}-a", b"1")
    raw.set(f"kv:{key}-c", b"3")

    async def scenario(store: CacheStore) -> Any:
        return await store.mget([f"{key}-c", f"{key}-b", f"{key}-a"])

    assert run(settings, scenario) == [b"3", None, b"1"]


@pytest.mark.parametrize("ttl", [None, 100])
def test_mset_stores_every_item_with_the_batch_ttl(settings, raw, key, ttl) -> None:
    items = [(f"{key}-{i}", str(i).encode()) for i in range(3)]

    async def scenario(store: CacheStore) -> Any:
        await store.mset(items, ttl)

    run(settings, scenario)
    for name, value in items:
        assert raw.get(f"kv:{name}") == value
        left = raw.ttl(f"kv:{name}")
        assert left == -1 if ttl is None else 98 <= left <= 100


def test_incr_adds_and_returns_the_new_value(settings, raw, key) -> None:
    async def scenario(store: CacheStore) -> Any:
        return [await store.incr(key, by, None) for by in (1, 5, -10)], await store.counter(key)

    assert run(settings, scenario) == ([1, 6, -4], -4)
    assert raw.get(f"ctr:{key}") == b"-4"
    assert raw.ttl(f"ctr:{key}") == -1


def test_incr_ttl_starts_a_window_only_once(settings, raw, key) -> None:
    async def scenario(store: CacheStore) -> Any:
        await store.incr(key, 1, 50)
        await store.incr(key, 1, 1000)  # a later TTL does not move the window

    run(settings, scenario)
    assert 48 <= raw.ttl(f"ctr:{key}") <= 50


def test_incr_keeps_64_bit_values_exact_and_refuses_overflow(settings, raw, key) -> None:
    async def scenario(store: CacheStore) -> Any:
        top = await store.incr(key, INT64_MAX, None)
        with pytest.raises(CounterOverflowError) as refused:
            await store.incr(key, 1, None)
        # What the client is told (the documented 409 counter-overflow problem).
        problem = edge_problem(refused.value)
        assert problem is not None
        assert (problem.status, problem.slug, problem.detail) == (
            409,
            "counter-overflow",
            "increment would overflow a 64-bit integer",
        )
        return top, await store.counter(key)

    assert run(settings, scenario) == (INT64_MAX, INT64_MAX)


def test_a_counter_and_a_value_of_the_same_key_are_apart(settings, key) -> None:
    async def scenario(store: CacheStore) -> Any:
        await store.put(key, b'"text"', None, only_if_absent=False)
        await store.incr(key, 3, None)
        return await store.get(key), await store.counter(key), await store.counter(f"{key}-x")

    assert run(settings, scenario) == ((b'"text"', None), 3, None)


def test_scripts_are_loaded_again_after_redis_forgets_them(settings, raw, key) -> None:
    async def scenario(store: CacheStore) -> Any:
        await store.incr(key, 1, None)
        await store.put(key, b"1", 100, only_if_absent=False)
        raw.script_flush()  # as after a Redis restart: EVALSHA answers NOSCRIPT
        await store.mset([(f"{key}-m", b"2")], 100)
        return await store.get(key), await store.incr(key, 1, None)

    (value, _ttl), counted = run(settings, scenario)
    assert (value, counted) == (b"1", 2)
    assert raw.get(f"kv:{key}-m") == b"2"


def test_ping_and_the_latency_of_each_operation_are_recorded(settings, key) -> None:
    metrics = Metrics("cache")

    async def scenario(store: CacheStore) -> Any:
        await store.ping()
        await store.get(key)
        await store.get(key)
        await store.incr(key, 1, None)

    run(settings, scenario, metrics)

    def count(command: str) -> float | None:
        return metrics.registry.get_sample_value(
            "redis_command_duration_seconds_count", {"service": "cache", "command": command}
        )

    assert (count("ping"), count("get"), count("incr"), count("set")) == (1, 2, 1, 0)
    errors = metrics.registry.get_sample_value(
        "redis_command_errors_total", {"service": "cache", "command": "get"}
    )
    assert errors == 0
    # Durations, not clock readings: a loopback round trip is far under a second.
    for command in ("ping", "get", "incr"):
        took = metrics.registry.get_sample_value(
            "redis_command_duration_seconds_sum", {"service": "cache", "command": command}
        )
        assert took is not None
        assert 0 < took < 5, (command, took)
    # Sub-millisecond buckets: the store's latency is told apart at 100 microseconds.
    fastest = metrics.registry.get_sample_value(
        "redis_command_duration_seconds_bucket",
        {"service": "cache", "command": "get", "le": "0.0001"},
    )
    assert fastest is not None
    # What /metrics says each family is (its HELP line).
    help_text = {family.name: family.documentation for family in metrics.registry.collect()}
    assert help_text["redis_command_duration_seconds"] == (
        "Latency of Redis calls made by the cache service, by operation."
    )
    assert help_text["redis_command_errors"] == (
        "Redis calls that failed (store unreachable or too slow), by operation."
    )


def test_a_connection_redis_dropped_is_replaced_once_silently(settings, raw, key) -> None:
    """Pooled sockets go stale when Redis restarts or drops them: one retry, no 503."""

    async def scenario(store: CacheStore) -> Any:
        before = {client["id"] for client in raw.client_list()}
        await store.put(key, b"1", None, only_if_absent=False)  # the pool opens a socket
        mine = [c["id"] for c in raw.client_list() if c["id"] not in before]
        assert mine, "the store opened no connection"
        for client_id in mine:
            raw.client_kill_filter(_id=client_id)
        return await store.get(key)

    assert run(settings, scenario) == (b"1", None)
