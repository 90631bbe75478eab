"""Engine, sessions and store-failure mapping: the only module that opens connections.

One engine per worker process (created by the app factory after gunicorn forks, through
:func:`init_app`, like Flask's tutorial), a session per request opened lazily by
:func:`session` and closed at app-context teardown. Every connection carries a statement
timeout and a lock timeout, so nothing waits on PostgreSQL without bound.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from services.common.metrics import Metrics
from services.common.problems import Problem, store_unavailable
from services.critical import commit_guard, transfer_call
from services.critical.settings import CriticalSettings

logger = logging.getLogger(__name__)
SESSIONS = "strata.sessionmaker"
ENGINE = "strata.engine"
TRANSFERS = "strata.transfer_call"

# SQLSTATEs that mean "the database is not answering in time", not "your request is wrong".
# 25006 (read-only transaction): a write reached a server that is no longer the primary
# (a pooled connection to a demoted leader, mid-switchover).
_UNAVAILABLE_SQLSTATES = {
    "57014", "57P01", "57P02", "57P03", "55P03", "08000", "08003", "08006", "25006",
}  # fmt: skip


def init_app(app: Flask, settings: CriticalSettings, metrics: Metrics) -> Engine:
    """Give ``app`` its engine (pool instrumented) and its per-request sessions."""
    engine = make_engine(settings)
    instrument_pool(engine, metrics, settings.pool_size + settings.max_overflow)
    app.extensions[ENGINE] = engine
    factory, watchdog = guarded_sessions(engine, settings.statement_timeout_ms / 1000)
    app.extensions[SESSIONS] = factory
    app.extensions[TRANSFERS] = transfer_call.Caller(
        engine, watchdog, settings.statement_timeout_ms / 1000
    )
    app.teardown_appcontext(close_session)
    return engine


def transfers() -> transfer_call.Caller:
    """The one-call transfer path of this worker's engine."""
    caller: transfer_call.Caller = current_app.extensions[TRANSFERS]
    return caller


def session() -> Session:
    """The request's session, opened lazily and closed at app-context teardown."""
    if "strata_session" not in g:
        factory: sessionmaker[Session] = current_app.extensions[SESSIONS]
        g.strata_session = factory()
    current: Session = g.strata_session
    return current


def close_session(exc: BaseException | None = None) -> None:
    """Teardown hook: return the connection to the pool whatever happened."""
    current: Session | None = g.pop("strata_session", None)
    if current is not None:
        current.close()


def make_engine(settings: CriticalSettings, *, migration: bool = False) -> Engine:
    """A pooled engine with bounded waits (pool timeout, connect and statement timeouts)."""
    # TimeZone=UTC: timestamps read through the ORM render in UTC ("Z"), exactly as
    # ledger_transfer() (migration 0003) renders the created_at it stores in an answer.
    options = (
        "-c TimeZone=UTC "
        f"-c statement_timeout={settings.statement_timeout_ms} "
        f"-c lock_timeout={settings.statement_timeout_ms} "
        f"-c idle_in_transaction_session_timeout={max(settings.statement_timeout_ms * 6, 60000)}"
    )
    return create_engine(
        settings.url(migration=migration),
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout,
        # No ping per checkout (a round trip per request): a connection a restart broke
        # fails its first statement, which invalidates the whole pool (SQLAlchemy drops
        # every older connection), answers 503 store-unavailable, and reads retry once
        # (services/critical/reads.py).
        pool_pre_ping=False,
        pool_recycle=1800,
        # Bound values (owners, references, token subjects) stay out of error texts.
        hide_parameters=True,
        connect_args={
            "connect_timeout": settings.connect_timeout,
            "options": options,
            "application_name": f"strata-critical{'-migrate' if migration else ''}",
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
        },
    )


def guarded_sessions(
    engine: Engine, commit_timeout: float
) -> tuple[sessionmaker[Session], commit_guard.CommitWatchdog]:
    """Sessions that keep loaded values after commit (responses are built after it).

    A commit acknowledged to a client is on two servers when PostgreSQL replicates
    synchronously, and a COMMIT never waits longer than ``commit_timeout`` (commit_guard).
    The watchdog is returned too, for statements that commit by themselves.
    """
    factory = sessionmaker(engine, expire_on_commit=False, autoflush=False)
    return factory, commit_guard.install(engine, factory, commit_timeout)


def instrument_pool(engine: Engine, metrics: Metrics, capacity: int) -> None:
    """Export pool capacity and checked-out connections (for saturation alerts)."""
    in_use = metrics.gauge("strata_db_pool_connections_in_use", "Connections in use from the pool.")
    size = metrics.gauge("strata_db_pool_connections_max", "Pool size plus max overflow.")
    size.labels(metrics.service).set(capacity)
    gauge = in_use.labels(metrics.service)

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        gauge.inc()

    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        gauge.dec()


def ping(engine: Engine) -> str:
    """``"ok"`` if PostgreSQL answers ``SELECT 1``, else a short reason (for /readyz)."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except PoolTimeout:
        return "pool exhausted"
    except DBAPIError as exc:
        return f"database error: {type(exc.orig).__name__}"
    return "ok"


def ping_within(engine: Engine, timeout: float) -> str:
    """:func:`ping` with a deadline: ``"timeout after <timeout>s"`` when it has not answered.

    The ping runs in a daemon thread, so a database that accepts connections but never
    answers holds that thread (until the pool, connect and statement timeouts end it),
    never the probe.
    """
    answer: list[str] = []
    thread = threading.Thread(
        target=lambda: answer.append(ping(engine)), name="readyz-ping", daemon=True
    )
    thread.start()
    thread.join(timeout)
    return answer[0] if answer else f"timeout after {timeout}s"


def as_problem(exc: Exception) -> Problem | None:
    """Map a store failure to 503 ``store-unavailable``; None when it is not one."""
    if isinstance(exc, PoolTimeout | commit_guard.UnreplicatedCommitError):
        return store_unavailable("database")
    if isinstance(exc, OperationalError):
        return store_unavailable("database")
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return store_unavailable("database")
        code = getattr(exc.orig, "pgcode", None)
        if code in _UNAVAILABLE_SQLSTATES:
            return store_unavailable("database")
    return None
