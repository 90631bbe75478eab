"""Sentinel mode: find the Redis master through Sentinel and follow it across failovers.

Requests never wait on Sentinel. Each worker runs one :class:`MasterFollower` task that
asks the Sentinels where the master is every ``REDIS_SENTINEL_CHECK_INTERVAL`` seconds,
and at once (at most every ``_MIN_GAP`` s) when a request failed. Connections are made to
the address it last saw, so a request costs what it costs in standalone mode and is
bounded by the same connect + socket timeouts. When the address changes, idle
connections are closed and busy ones are closed when they come back to the pool: every
later command goes to the new master.

A demoted master answers writes with ``READONLY`` (redis-py's Sentinel connection turns
that into a ``ConnectionError`` after closing the socket) and, with
``min-replicas-to-write``, an isolated master answers ``NOREPLICAS``. Both mean the
command was refused, not run. The store answers such a request 503 ``store-unavailable``
and wakes the follower; commands are never sent twice in this mode (no retry), so an
increment whose reply was lost is never applied twice by the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Final

from prometheus_client import Counter
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from services.cache.resolver import Resolver
from services.cache.settings import CacheSettings
from services.common.metrics import Metrics

log = logging.getLogger("strata.cache.sentinel")

#: Shortest pause between two Sentinel queries when failing requests keep waking the follower.
_MIN_GAP: Final = 0.1
_WARN_EVERY: Final = 5.0


class NotMasterError(RedisConnectionError):
    """The node at the master address answered that it is not the master (readiness)."""


def pool_options(settings: CacheSettings) -> dict[str, Any]:
    """Options of the master pool: the URL's database and credentials, never its host."""
    options: dict[str, Any] = dict(parse_url(settings.redis_url))
    options.pop("host", None)
    options.pop("port", None)
    # rediss://: the URL names redis-py's SSLConnection, which would replace the Sentinel
    # pool's own connection class; ssl=True makes the pool pick its TLS variant instead
    # (SentinelManagedSSLConnection), and a plain client (the ROLE check) takes it too.
    if options.pop("connection_class", None) is not None:
        options["ssl"] = True
    options.update(settings.redis_options())
    if options.get("ssl"):
        # Connections go to the address the follower resolved (an IP), not to a name a
        # certificate could carry: the chain is verified against the CA, the name is not.
        options["ssl_check_hostname"] = False
    return options


def _no_retry() -> Retry:
    # Never send a command twice: a reply lost after an INCR ran must not add twice.
    return Retry(NoBackoff(), 0)


class FollowingPool(SentinelConnectionPool, BlockingConnectionPool):
    """A master pool that connects to the follower's last known address, and makes a burst
    wait for a free connection (up to ``timeout`` seconds) as standalone mode's pool does.

    redis-py's own pool asks the Sentinels on every new connection, which puts their
    round trips (and their timeouts, one Sentinel after the other) into requests.

    Why two bases: redis-py's ``SentinelConnectionPool`` derives from the plain
    ``ConnectionPool``, which raises at once when every connection is busy, and redis-py has
    no blocking Sentinel pool. The two bases override different methods (both ``__init__``
    pass the rest on through ``super()``), so the MRO (this class, ``SentinelConnectionPool``,
    ``BlockingConnectionPool``, ``ConnectionPool``) composes them without code of ours:
    ``timeout`` and ``max_connections`` reach the blocking pool; ``get_connection`` and
    ``release`` are the blocking pool's (wait on its condition up to ``timeout``, wake one
    waiter on release, also when the released connection was closed because the master
    moved); the connection they hand out is a ``SentinelManagedConnection``, which connects
    to :meth:`get_master_address`; ``reset`` is the Sentinel pool's, and ``disconnect`` and
    ``update_active_connections_for_reconnect`` (used by :meth:`MasterFollower._switch`)
    the plain pool's. tests/unit/cache/test_sentinel.py pins this shape.
    """

    def __init__(self, follower: MasterFollower, **kwargs: Any) -> None:
        super().__init__(follower.master_name, follower.sentinel, **kwargs)  # type: ignore[no-untyped-call]
        self._follower = follower

    async def get_master_address(self) -> tuple[str, int]:
        """The address the follower last saw (no Sentinel round trip)."""
        address = self._follower.address
        if address is None:
            self._follower.wake()
            raise MasterNotFoundError(f"no master known yet for {self.service_name!r}")
        return address


class MasterFollower:
    """Where the master is, for one worker: a background task refreshes it from Sentinel."""

    def __init__(self, settings: CacheSettings, metrics: Metrics) -> None:
        self.master_name = settings.redis_sentinel_master
        self.interval = settings.redis_sentinel_check_interval
        sentinel_options = settings.sentinel_options()
        sentinel_options["retry"] = _no_retry()
        # The redis-py Sentinel object only serves as the pool's manager: queries go to
        # clients made per resolved address (_sentinel_client), never through a DNS name.
        self.sentinel = Sentinel([], sentinel_kwargs=sentinel_options)  # type: ignore[no-untyped-call]
        self._sentinel_options = sentinel_options
        self._sentinels = settings.sentinel_addresses
        self._clients: dict[tuple[str, int], Redis] = {}
        self._resolver = Resolver(settings.redis_connect_timeout)
        self._node_options = {**pool_options(settings), "retry": _no_retry()}
        self.pool = FollowingPool(self, timeout=settings.pool_timeout, **self._node_options)
        self.address: tuple[str, int] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_query = 0.0
        self._last_warning = -_WARN_EVERY
        service = metrics.service
        changes: Counter = metrics.counter(
            "redis_master_changes_total",
            "Times this service started using a different Redis master (Sentinel mode).",
        )
        errors: Counter = metrics.counter(
            "redis_sentinel_errors_total",
            "Sentinel queries that found no usable master (Sentinel mode).",
        )
        self._changes = changes.labels(service)
        self._errors = errors.labels(service)

    async def start(self) -> None:
        """Find the master once (the service starts even if that fails), then follow it."""
        await self.refresh()
        self._task = asyncio.create_task(self._follow(), name="redis-master-follower")

    async def close(self) -> None:
        """Stop following and close the Sentinel clients (the store closes the pool)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for client in self._clients.values():
            await client.aclose()

    def wake(self) -> None:
        """Ask Sentinel again soon: a request just failed against the known master."""
        self._wake.set()

    async def refresh(self) -> None:
        """Ask the Sentinels where the master is; switch to it when it moved and says so.

        As Redis's client guidelines describe: the first Sentinel that answers
        ``SENTINEL GET-MASTER-ADDR-BY-NAME`` names the master (during a failover it names
        the promoted replica as soon as that is promoted), and ``ROLE`` on that node must
        confirm it before requests go there. A failed query keeps the last address: while
        Sentinels are unreachable, a master that still answers keeps serving.
        """
        self._last_query = time.monotonic()
        address = await self._ask_sentinels()
        if address is None:
            self._errors.inc()
            return
        if address != self.address and await self._is_master(address):
            await self._switch(address)

    async def _ask_sentinels(self) -> tuple[str, int] | None:
        problems: list[str] = []
        for index, (host, port) in enumerate(self._sentinels):
            ip = await self._resolver.resolve(host)
            if ip is None:
                problems.append(f"{host}: name not resolved in time")
                continue
            try:
                reply = await self._sentinel_client(ip, port).execute_command(  # type: ignore[no-untyped-call]
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name
                )
            except (RedisError, OSError) as exc:
                problems.append(f"{host}:{port}: {exc}")
                continue
            if not reply:
                problems.append(f"{host}:{port}: no master {self.master_name!r}")
                continue
            # Ask the Sentinel that answered first next time.
            self._sentinels = [
                self._sentinels[index],
                *self._sentinels[:index],
                *self._sentinels[index + 1 :],
            ]
            master_host, master_port = _text(reply[0]), int(reply[1])
            master_ip = await self._resolver.resolve(master_host)
            if master_ip is None:
                problems.append(f"master {master_host}: name not resolved in time")
                break
            return master_ip, master_port
        self._warn("sentinel: no Sentinel named a reachable master: %s", "; ".join(problems))
        return None

    def _sentinel_client(self, ip: str, port: int) -> Redis:
        client = self._clients.get((ip, port))
        if client is None:
            client = Redis(host=ip, port=port, **self._sentinel_options)
            self._clients[ip, port] = client
        return client

    async def _is_master(self, address: tuple[str, int]) -> bool:
        client = Redis(host=address[0], port=address[1], **self._node_options)
        try:
            role = await client.execute_command("ROLE")  # type: ignore[no-untyped-call]
        except (RedisError, OSError) as exc:
            self._warn("sentinel: master candidate %s:%s did not answer: %s", *address, exc)
            return False
        finally:
            await client.aclose()
        if _text(role[0]) != "master":
            self._warn("sentinel: %s:%s is not a master yet (%s)", *address, _text(role[0]))
            return False
        return True

    def _warn(self, message: str, *args: object) -> None:
        # An outage wakes the follower up to 10 times a second: one line per 5 s is enough.
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY:
            self._last_warning = now
            log.warning(message, *args)

    async def _switch(self, address: tuple[str, int]) -> None:
        previous, self.address = self.address, address
        self.pool.master_address = address
        if previous is not None:
            self._changes.inc()
            log.warning(
                "sentinel: master of %s moved from %s to %s", self.master_name, previous, address
            )
        # Busy connections close when they come back; idle ones now. Both reconnect to
        # the new address on their next use.
        await self.pool.update_active_connections_for_reconnect()  # type: ignore[no-untyped-call]
        await self.pool.disconnect(inuse_connections=False)

    async def _follow(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._wake.clear()
            pause = self._last_query + _MIN_GAP - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            try:
                await self.refresh()
            except Exception:  # never let the follower die: requests rely on it
                log.exception("sentinel: refreshing the master failed")

    async def check_master(self, redis: Redis) -> None:
        """Readiness: a master is known and the node there (through ``redis``) says so."""
        if self.address is None:
            self.wake()
            raise MasterNotFoundError(f"no master known for {self.master_name!r}")
        role = await redis.execute_command("ROLE")  # type: ignore[no-untyped-call]
        if not role or _text(role[0]) != "master":
            self.wake()
            raise NotMasterError(f"{self.address[0]}:{self.address[1]} is not the master")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
