"""The only module that talks to Redis: one connection pool per worker, Lua for atomicity.

Layout in Redis: values live under ``kv:<key>`` as JSON text, counters under
``ctr:<key>`` as Redis integers, so a counter and a value never collide.

Every call is bounded by the socket/connect timeouts from settings. A connection error
is retried once on a fresh connection (pooled sockets go stale when Redis restarts);
timeouts are never retried, so a call waits at most connect + socket timeout, plus at
most one socket timeout queued for a connection when all ``max_connections`` are busy
(redis-py's ``BlockingConnectionPool``: a burst waits instead of failing at once).
Any failure to reach Redis becomes :class:`StoreUnavailableError` (503 with Retry-After).

With ``REDIS_SENTINELS`` set the pool follows the master Sentinel names (services/cache/
sentinel.py): same request path and bounds, no retries, and a failure wakes the follower.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from time import perf_counter
from typing import Any, Final

from prometheus_client import Counter, Histogram
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    MasterDownError,
    NoScriptError,
    ReadOnlyError,
    ResponseError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from services.cache.errors import CounterOverflowError, StoreUnavailableError
from services.cache.sentinel import MasterFollower
from services.cache.settings import CacheSettings
from services.common.metrics import Metrics
from services.common.warmup import warm_up

logger = logging.getLogger("strata.cache.store")

KV_PREFIX: Final = "kv:"
COUNTER_PREFIX: Final = "ctr:"

# Value and remaining TTL in one round trip; TTL -1 means "no expiry".
_GET_WITH_TTL = """
local v = redis.call('GET', KEYS[1])
if not v then return nil end
return {v, redis.call('TTL', KEYS[1])}
"""
# Every key of a batch with the same TTL, atomically (a script runs alone in Redis).
_MSET_WITH_TTL = """
for i, k in ipairs(KEYS) do redis.call('SET', k, ARGV[i + 1], 'EX', ARGV[1]) end
return #KEYS
"""
# Increment; a TTL is set only when the counter has none yet (a fixed window). The new
# value is returned as Redis's own text: INCRBY's reply becomes a Lua number (a double),
# which would round values beyond 2**53 (INT64_MAX came back as INT64_MIN).
_INCR = """
redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if ttl > 0 and redis.call('TTL', KEYS[1]) == -1 then redis.call('EXPIRE', KEYS[1], ttl) end
return redis.call('GET', KEYS[1])
"""
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError)
# A master refusing writes for now (min-replicas-to-write): the command did not run.
_REFUSED = "NOREPLICAS"
REDIS_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)
OPERATIONS = ("get", "set", "delete", "mget", "mset", "incr", "counter_get", "ping")


def make_pool(settings: CacheSettings) -> BlockingConnectionPool:
    """A connection pool from settings; explicit username/password win over the URL's.

    When every connection is busy a call waits up to ``settings.pool_timeout`` for one
    (then redis-py raises ``ConnectionError``: 503), rather than failing at once.
    """
    options: dict[str, Any] = dict(parse_url(settings.redis_url))
    options.update(settings.redis_options())
    # One retry on a connection error only: stale pooled sockets after a Redis restart.
    # (Waiting for a free connection is not retried: it fails in get_connection, before
    # redis-py's retry loop.)
    options["retry"] = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    return BlockingConnectionPool(timeout=settings.pool_timeout, **options)


class CacheStore:
    """Key-value and counter operations; one instance (and pool) per worker process."""

    def __init__(self, settings: CacheSettings, metrics: Metrics) -> None:
        self._follower: MasterFollower | None = None
        if settings.redis_sentinels:
            self._follower = MasterFollower(settings, metrics)
            self._pool: ConnectionPool = self._follower.pool
        else:
            self._pool = make_pool(settings)
        self._redis = Redis(connection_pool=self._pool)
        self._retry_after = settings.retry_after_seconds
        latency: Histogram = metrics.histogram(
            "redis_command_duration_seconds",
            "Latency of Redis calls made by the cache service, by operation.",
            ["command"],
            buckets=REDIS_BUCKETS,
        )
        errors: Counter = metrics.counter(
            "redis_command_errors_total",
            "Redis calls that failed (store unreachable or too slow), by operation.",
            ["command"],
        )
        service = metrics.service
        # Children bound once: a labels() lookup per call would cost in the hot path.
        self._latency = {op: latency.labels(service, op) for op in OPERATIONS}
        self._errors = {op: errors.labels(service, op) for op in OPERATIONS}
        # Called by SHA through _call (metrics, failure mapping), not the script's
        # own __call__; EVAL on the first NOSCRIPT (e.g. after a Redis restart).
        self._get_script = self._redis.register_script(_GET_WITH_TTL)
        self._mset_script = self._redis.register_script(_MSET_WITH_TTL)
        self._incr_script = self._redis.register_script(_INCR)

    async def start(self) -> None:
        """Sentinel mode: find the master and start following it (standalone: nothing)."""
        if self._follower is not None:
            await self._follower.start()

    async def warm(self) -> None:
        """Open one pooled connection before the worker takes requests
        (services.common.warmup: a Redis that is down leaves the worker unready)."""
        await warm_up(self.ping, logger)

    async def close(self) -> None:
        """Close every pooled connection (after the server stopped)."""
        if self._follower is not None:
            await self._follower.close()
        await self._redis.aclose()
        await self._pool.disconnect()

    async def _call(self, op: str, *args: Any) -> Any:
        started = perf_counter()
        try:
            # A full pool makes this wait (at most the pool timeout) before it runs; that
            # wait ends in redis-py's ConnectionError("No connection available."): 503 (in
            # Sentinel mode it also wakes the follower: a pool held by hung calls is what
            # a lost master looks like).
            return await self._redis.execute_command(*args)  # type: ignore[no-untyped-call]
        except _UNREACHABLE:
            raise self._unavailable(op) from None
        except ResponseError as exc:
            if isinstance(exc, MasterDownError) or str(exc).startswith(_REFUSED):
                raise self._unavailable(op) from None
            raise
        finally:
            self._latency[op].observe(perf_counter() - started)

    def _unavailable(self, op: str) -> StoreUnavailableError:
        self._errors[op].inc()
        if self._follower is not None:
            self._follower.wake()
        return StoreUnavailableError(self._retry_after)

    async def _eval(
        self, op: str, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        try:
            return await self._call(op, "EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            # EVAL runs it and caches it, so the next EVALSHA finds it.
            return await self._call(op, "EVAL", script.script, len(keys), *keys, *args)

    async def ping(self) -> None:
        """Round trip to Redis (readiness); raises Redis's own error so /readyz can name it.

        Sentinel mode: the master must be known and answer ``ROLE`` as the master.
        """
        started = perf_counter()
        try:
            if self._follower is None:
                await self._redis.execute_command("PING")  # type: ignore[no-untyped-call]
            else:
                await self._follower.check_master(self._redis)
        except _UNREACHABLE:
            self._errors["ping"].inc()
            if self._follower is not None:
                self._follower.wake()
            raise
        finally:
            self._latency["ping"].observe(perf_counter() - started)

    async def get(self, key: str) -> tuple[bytes, int | None] | None:
        """The stored JSON text and remaining TTL in seconds (None: no expiry), or None."""
        found = await self._eval("get", self._get_script, (KV_PREFIX + key,), ())
        if found is None:
            return None
        value, ttl = found
        return value, (ttl if ttl >= 0 else None)

    async def put(self, key: str, value: bytes, ttl: int | None, *, only_if_absent: bool) -> bool:
        """Store JSON text (replacing value and TTL); False when ``only_if_absent`` and present."""
        args: list[Any] = ["SET", KV_PREFIX + key, value]
        if ttl is not None:
            args += ["EX", ttl]
        if only_if_absent:
            args.append("NX")
        return await self._call("set", *args) is not None

    async def delete(self, key: str) -> bool:
        """Remove a value; False when there was none."""
        return bool(await self._call("delete", "DEL", KV_PREFIX + key))

    async def mget(self, keys: Sequence[str]) -> list[bytes | None]:
        """The JSON texts of ``keys`` in order (None where absent)."""
        result: list[bytes | None] = await self._call(
            "mget", "MGET", *[KV_PREFIX + k for k in keys]
        )
        return result

    async def mset(self, items: Sequence[tuple[str, bytes]], ttl: int | None) -> None:
        """Store every item atomically, all with the same TTL (or none)."""
        if ttl is None:
            flat: list[Any] = []
            for key, value in items:
                flat += (KV_PREFIX + key, value)
            await self._call("mset", "MSET", *flat)
            return
        keys = [KV_PREFIX + key for key, _ in items]
        await self._eval("mset", self._mset_script, keys, [ttl, *[v for _, v in items]])

    async def incr(self, key: str, by: int, ttl: int | None) -> int:
        """Add ``by`` atomically and return the new value; ``ttl`` starts a window if none."""
        try:
            value = await self._eval(
                "incr", self._incr_script, (COUNTER_PREFIX + key,), (by, ttl or 0)
            )
        except ResponseError as exc:
            if "overflow" in str(exc):
                raise CounterOverflowError() from None
            raise
        return int(value)

    async def counter(self, key: str) -> int | None:
        """A counter's value, or None when it does not exist."""
        value = await self._call("counter_get", "GET", COUNTER_PREFIX + key)
        return None if value is None else int(value)
