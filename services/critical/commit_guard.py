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
"""

from __future__ import annotations

import logging
import threading
import time
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

    def arm(self, raw: Any) -> None:
        """Watch ``raw`` (a psycopg2 connection) from now."""
        with self._cond:
            self._armed[id(raw)] = (time.monotonic() + self.seconds, raw)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="commit-watchdog", daemon=True
                )
                self._thread.start()
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
                self._cond.wait(timeout=max(0.0, nearest - time.monotonic()))


def install(engine: Engine, factory: sessionmaker[Session], seconds: float) -> None:
    """Bound every COMMIT on ``engine`` and check its sessions' commits were replicated."""
    watchdog = CommitWatchdog(seconds)

    def _arm(conn: Connection) -> None:
        raw = conn.connection.dbapi_connection
        notices = getattr(raw, "notices", None)
        if isinstance(notices, list):
            del notices[:]  # psycopg2 keeps the last 50 notices of the connection
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
        if any(UNREPLICATED in notice for notice in getattr(raw, "notices", ())):
            logger.warning("commit not confirmed by a synchronous standby: answering 503")
            raise UnreplicatedCommitError("commit not confirmed by a synchronous standby")

    event.listen(engine, "commit", _arm)
    event.listen(engine, "checkin", _disarm)
    event.listen(factory, "after_begin", _remember)
    event.listen(factory, "after_commit", _check)
