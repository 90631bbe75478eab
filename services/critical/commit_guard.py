"""A COMMIT is acknowledged only once a synchronous standby confirmed it, and never hangs.

With synchronous replication (the chart's Patroni cluster), PostgreSQL's COMMIT waits for a
standby to confirm. Two things PostgreSQL does not do for us:

* it does not bound that wait: the statement timeout is disabled before COMMIT runs, so with
  no standby left (strict synchronous mode) a request would hang forever. A per-process
  watchdog cancels a COMMIT that waits longer than the statement timeout;
* a cancelled wait still returns success, with the WARNING "canceling wait for synchronous
  replication": the transaction is committed on this server only. The session checks the
  connection's notices after COMMIT and raises :class:`UnreplicatedCommitError` (a 503).

Without synchronous replication neither ever happens and the cost is one dict insert per
commit. The watchdog thread starts on the first commit, after the server forked.

A statement run in autocommit (``transfer_call``: one call is the whole transaction) commits
without a COMMIT: :func:`autocommitted` gives it the same two guards.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

logger = logging.getLogger(__name__)

# lc_messages is C on the chart's servers (and PostgreSQL's default).
UNREPLICATED = "canceling wait for synchronous replication"


class UnreplicatedCommitError(Exception):
    """COMMIT returned, but no synchronous standby confirmed it: do not acknowledge it.

    Answered as 503 ``store-unavailable``; the client's retry with the same Idempotency-Key
    replays the stored outcome once it is replicated (see ``idempotency.claim``).
    """


class CommitWatchdog:
    """Cancels COMMITs still running after ``seconds`` (one thread, started lazily)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._armed: dict[int, tuple[float, Any]] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        # When the thread wakes next by itself. A deadline no earlier needs no wake-up: a
        # notify per commit was a thread switch per request (issue 15).
        self._wakes_at = float("inf")

    def arm(self, raw: Any, extra: float = 0.0) -> None:
        """Watch ``raw`` (a psycopg2 connection) from now, for ``seconds`` plus ``extra``."""
        with self._cond:
            deadline = time.monotonic() + self.seconds + extra
            self._armed[id(raw)] = (deadline, raw)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="commit-watchdog", daemon=True
                )
                self._thread.start()
            if deadline < self._wakes_at:
                self._wakes_at = deadline
                self._cond.notify()

    def disarm(self, raw: Any) -> None:
        """Stop watching ``raw``; after this returns it is never cancelled for that commit."""
        with self._cond:
            self._armed.pop(id(raw), None)

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [k for k, (deadline, _) in self._armed.items() if deadline <= now]
                for key in due:
                    _, raw = self._armed.pop(key)
                    # Under the lock: disarm() (at checkin) cannot interleave, so the cancel
                    # is sent only while this commit still owns the connection.
                    logger.warning("COMMIT still waiting after %.1fs: cancelling", self.seconds)
                    try:
                        raw.cancel()
                    except Exception:  # a closed connection needs no cancel
                        logger.debug("cancel failed", exc_info=True)
                nearest = min((d for d, _ in self._armed.values()), default=now + 3600)
                self._wakes_at = nearest
                self._cond.wait(timeout=max(0.0, nearest - time.monotonic()))


# Where a statement's notices are kept: SQLAlchemy's psycopg2 dialect logs and clears a
# connection's notices right after each statement (post_exec), before its caller could see
# them; an after_cursor_execute listener runs just before that and keeps them here.
_NOTICES = "strata_statement_notices"


def _forget_notices(raw: Any) -> None:
    notices = getattr(raw, "notices", None)
    if isinstance(notices, list):
        del notices[:]  # psycopg2 keeps the last 50 notices of the connection


def _check_replicated(notices: Iterable[str]) -> None:
    if any(UNREPLICATED in notice for notice in notices):
        logger.warning("commit not confirmed by a synchronous standby: answering 503")
        raise UnreplicatedCommitError("commit not confirmed by a synchronous standby")


@contextlib.contextmanager
def autocommitted(
    watchdog: CommitWatchdog, conn: Connection, statement_seconds: float
) -> Iterator[None]:
    """Guard the autocommit statement run on ``conn`` in the block as a COMMIT is guarded.

    The statement first runs under its own statement timeout (``statement_seconds``), then
    its implicit commit waits for standbys with no timeout at all: the watchdog allows both.
    A statement that raised committed nothing, so only a successful one is checked.
    """
    raw = conn.connection.dbapi_connection
    _forget_notices(raw)
    conn.info.pop(_NOTICES, None)
    watchdog.arm(raw, extra=statement_seconds)
    try:
        yield
    finally:
        watchdog.disarm(raw)
    _check_replicated(conn.info.pop(_NOTICES, ()))


def install(engine: Engine, factory: sessionmaker[Session], seconds: float) -> CommitWatchdog:
    """Bound every COMMIT on ``engine`` and check its sessions' commits were replicated.

    Returns the watchdog, for statements that commit by themselves (:func:`autocommitted`).
    """
    watchdog = CommitWatchdog(seconds)

    def _arm(conn: Connection) -> None:
        raw = conn.connection.dbapi_connection
        _forget_notices(raw)
        watchdog.arm(raw)

    def _disarm(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        watchdog.disarm(dbapi_connection)

    def _remember(session: Session, transaction: Any, connection: Connection) -> None:
        session.info["strata_raw_connection"] = connection.connection.dbapi_connection

    def _check(session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint released: the real COMMIT comes later
        raw = session.info.pop("strata_raw_connection", None)
        if raw is None:
            return
        watchdog.disarm(raw)
        _check_replicated(getattr(raw, "notices", ()))

    def _keep_notices(conn: Connection, cursor: Any, *args: Any) -> None:
        notices = getattr(cursor.connection, "notices", None)
        if notices:
            conn.info[_NOTICES] = list(notices)

    event.listen(engine, "commit", _arm)
    event.listen(engine, "after_cursor_execute", _keep_notices)
    event.listen(engine, "checkin", _disarm)
    event.listen(factory, "after_begin", _remember)
    event.listen(factory, "after_commit", _check)
    return watchdog
