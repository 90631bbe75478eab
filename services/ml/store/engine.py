"""The engine, its pool, and how database failures become store errors.

SQLAlchemy's asyncio engine owns the pool (size, overflow, checkout timeout; no pre-ping:
a connection a restart broke fails its first statement, the pool is renewed, point reads
retry once and other requests answer 503). Bulk paths take the asyncpg connection beneath
it (:meth:`Store.raw`) for COPY and server-side cursors; point reads run one prepared
statement on it (:meth:`Store.fetch_one`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import event, exc, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from services.common.jsonbody import dumps_value, loads
from services.common.problems import Problem
from services.common.warmup import warm_up
from services.ml.errors import StoreError, StoreUnavailableError
from services.ml.settings import MlDatabaseSettings
from services.ml.store.redact import is_database_error, redacted

logger = logging.getLogger("strata.ml.store")

# SQLSTATE classes/codes meaning "the database is not there right now", not "bad request".
_UNAVAILABLE_CLASSES = ("08", "53", "57")  # connection, resources, operator intervention
# statement timeout, lock timeout, deadlock; a write on a server that is no longer the
# primary (a pooled connection to a leader demoted by a switchover)
_UNAVAILABLE_CODES = {"57014", "55P03", "40P01", "25006"}


def _json_dumps(value: Any) -> str:
    return dumps_value(value).decode()  # integers of any size stay exact


def create_engine(
    settings: MlDatabaseSettings,
    *,
    migration: bool = False,
    read: bool = False,
    holders: int | None = None,
) -> AsyncEngine:
    """An engine whose every limit comes from settings (``migration``: as the owner role;
    ``read``: to the replicas when configured; ``holders``: a pool of that many
    connections to the primary that hold exported snapshots, apart from the request pool)."""
    timeout_s = settings.statement_timeout_ms / 1000
    name = "strata-ml-migrate" if migration else "strata-ml-read" if read else "strata-ml"
    if holders is not None:
        name = "strata-ml-snapshot"
    return create_async_engine(
        settings.database_url(migration=migration, read=read),
        # Errors never quote bound parameters (document data): see store.redact.
        hide_parameters=True,
        pool_size=settings.pool_size if holders is None else holders,
        max_overflow=settings.max_overflow if holders is None else 0,
        pool_timeout=settings.pool_timeout,
        # No ping per checkout: asyncpg's ping is a transaction (three round trips per
        # request). A connection a restart broke fails its first statement instead: SQLAlchemy
        # then renews the whole pool and the request answers 503, and point reads retry
        # once on a fresh connection (Store.fetch_one).
        pool_pre_ping=False,
        pool_recycle=1800,
        json_serializer=_json_dumps,
        json_deserializer=loads,
        connect_args={
            "timeout": settings.connect_timeout,
            # sslmode and CA bundle (services/common/dbtls.py): a context that verifies and
            # never falls back to plain text from require up.
            "ssl": settings.asyncpg_ssl(),
            # Client-side guard too: a hung (not refusing) server must not hang a request.
            "command_timeout": timeout_s + settings.connect_timeout,
            "server_settings": {
                "application_name": name,
                "statement_timeout": str(settings.statement_timeout_ms),
                # No plan_cache_mode here: a filtered read is planned for its values by
                # being prepared afresh (store.query.planned); the rest keep generic plans.
            },
        },
    )


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a driver error, whether raw asyncpg or wrapped by SQLAlchemy."""
    seen: BaseException | None = error
    while seen is not None:
        code = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(code, str):
            return code
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


def is_unavailable(error: BaseException) -> bool:
    """True when ``error`` means the store cannot be reached or answer in time."""
    if isinstance(error, OSError | TimeoutError | exc.TimeoutError):
        return True
    if isinstance(error, asyncpg.ConnectionDoesNotExistError | asyncpg.PostgresConnectionError):
        return True
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    code = sqlstate(error)
    if code is not None:
        return code[:2] in _UNAVAILABLE_CLASSES or code in _UNAVAILABLE_CODES
    cause = getattr(error, "orig", None) or error.__cause__
    return cause is not None and cause is not error and is_unavailable(cause)


@asynccontextmanager
async def translate_errors() -> AsyncIterator[None]:
    """Turn "database unavailable" failures into :class:`StoreUnavailableError`.

    Any other database error goes on as a :class:`~services.ml.store.redact.DatabaseError`
    (a 500 whose log names no data).
    """
    try:
        yield
    except (Problem, StoreError):
        raise
    except Exception as error:
        if is_unavailable(error):
            logger.warning("store unavailable: %s", type(error).__name__)
            raise StoreUnavailableError() from None
        if is_database_error(error):
            raise redacted(error) from None
        raise


class Store:
    """Per-worker database access: created after the fork, disposed at shutdown."""

    def __init__(
        self,
        settings: MlDatabaseSettings,
        on_pool_change: Callable[[int], None] | None = None,
        snapshot_holders: int = 1,
    ) -> None:
        self.engine = create_engine(settings)
        # Held snapshots (sharded exports) keep a connection for minutes: their own small
        # pool to the primary (a replica cannot import a primary's snapshot), so they never
        # take the request pool's connections. It connects only when a snapshot is taken.
        self.holders = create_engine(settings, holders=snapshot_holders)
        # Reads go to the replicas when configured (a second pool of the same size).
        self.reader = (
            create_engine(settings, read=True) if settings.read_database_host else self.engine
        )
        self.in_use = 0
        if on_pool_change is not None:

            def _out(*_: object) -> None:
                self.in_use += 1
                on_pool_change(self.in_use)

            def _in(*_: object) -> None:
                # checkin fires for every connection handed back, invalidated ones included.
                self.in_use = max(0, self.in_use - 1)
                on_pool_change(self.in_use)

            event.listen(self.engine.sync_engine, "checkout", _out)
            event.listen(self.engine.sync_engine, "checkin", _in)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection for reads (the replicas when configured); never commits."""
        async with translate_errors(), self.reader.connect() as conn:
            yield conn

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection inside one transaction, committed on success."""
        async with translate_errors(), self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def raw(
        self, *, read: bool = False, holder: bool = False
    ) -> AsyncIterator[asyncpg.Connection]:
        """The asyncpg connection under a pooled SQLAlchemy one (COPY, cursors).

        ``read``: a read-only use (list, count, sample, export) that may go to the replicas.
        ``holder``: from the pool of snapshot holders (:attr:`holders`).
        """
        engine = self.holders if holder else self.reader if read else self.engine
        async with translate_errors(), engine.connect() as conn:
            fairy = await conn.get_raw_connection()
            pg: asyncpg.Connection = fairy.driver_connection
            try:
                yield pg
            finally:
                # A transaction that could not be ended (a cancelled rollback) must never
                # go back to the pool: close the connection and the server rolls back.
                if pg.is_closed() or pg.is_in_transaction():
                    await conn.invalidate()

    async def fetch_one(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """One row of a read-only statement on the driver: no transaction, one round trip
        once asyncpg has prepared it on the connection (the replicas when configured).

        A connection PostgreSQL dropped (restart, failover, ``pg_terminate_backend``) is
        discarded with every other idle one of the pool, and the read runs once more on a
        new connection; a read changes nothing, so running it twice is safe.
        """
        for attempt in (1, 2):
            async with translate_errors():
                # Straight from the pool: SQLAlchemy's Connection and its asyncio wrapper
                # buy nothing for one statement on the driver (docs/ml.md, point reads).
                fairy = await self.reader.raw_connection()
                pg: asyncpg.Connection = fairy.driver_connection
                try:
                    return await pg.fetchrow(sql, *args)
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                    if not pg.is_closed():
                        raise
                finally:
                    await _check_in(fairy, pg)
                # Its siblings died with it, most likely: a new pool, like SQLAlchemy does
                # on a disconnect it sees (close=False: closing dead sockets waits).
                await self.reader.dispose(close=False)
                if attempt == 2:
                    logger.warning("store unavailable: connection dropped twice")
                    raise StoreUnavailableError() from None
            logger.warning("read retried on a new connection: the pooled one was dropped")
        raise AssertionError("unreachable")  # pragma: no cover

    async def ping(self) -> None:
        """One round trip (readiness)."""
        await _ping(self.engine)

    async def warm(self) -> None:
        """Open one pooled connection to each database before the worker takes requests
        (services.common.warmup: a database that is down leaves the worker unready)."""
        engines = [self.engine] if self.reader is self.engine else [self.engine, self.reader]

        async def ping_all() -> None:
            for engine in engines:
                await _ping(engine)

        await warm_up(ping_all, logger)

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        await self.holders.dispose()
        if self.reader is not self.engine:
            await self.reader.dispose()


async def _check_in(fairy: PoolProxiedConnection, pg: asyncpg.Connection) -> None:
    """Give ``fairy`` back to its pool, or discard it when its connection is closed.

    Shielded: a cancelled read (its client went away) must still give its connection
    back, and a check-in may wait (closing an overflow connection). The pool's reset
    is a rollback that sends nothing: the read ran outside a transaction.
    """
    done = fairy.invalidate if pg.is_closed() else fairy.close
    await asyncio.shield(greenlet_spawn(done))


async def _ping(engine: AsyncEngine) -> None:
    """One ``SELECT 1`` on a pooled connection of ``engine`` (which stays in the pool)."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
