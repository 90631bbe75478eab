"""PostgreSQL's exported snapshots: held by one connection, imported by export readers.

A holder is a ``REPEATABLE READ READ ONLY`` transaction that exported its snapshot
(``pg_export_snapshot()``) and stays open, idle, for the snapshot's lifetime: PostgreSQL
lets any other session of the same database import that snapshot (``SET TRANSACTION
SNAPSHOT``) only while the exporting transaction is open. The holder also labels its
session (a transaction-local ``application_name``) with a digest of the token the client
was given; a reader checks that some session still carries that label before importing,
so a token the service did not issue (or one whose holder is gone) is refused before
PostgreSQL is asked, and a snapshot id cannot be guessed into use.

Every export, held snapshot or not, reads in :func:`reading`: one transaction, the
collection looked up and the resume point resolved inside its snapshot.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg  # type: ignore[import-untyped]

from services.ml.errors import ResumePointGoneError, SnapshotGoneError
from services.ml.params import DocumentQuery
from services.ml.store.engine import Store
from services.ml.store.query import collection_id

#: What ``pg_export_snapshot()`` returns: ``%08X-%08X-%d`` (the exporter's virtual
#: transaction id and a counter). Checked before it is spliced into ``SET TRANSACTION
#: SNAPSHOT``, which takes no bind parameters.
SNAPSHOT_ID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{8}-[0-9]{1,10}$")
#: SQLSTATEs of an import whose exporter is gone: 22023 "invalid snapshot identifier",
#: 55000 "could not import the requested snapshot".
_GONE = frozenset({"22023", "55000"})


@dataclass(frozen=True)
class Imported:
    """A held snapshot to read in: PostgreSQL's id and the label its holder carries."""

    id: str
    label: str


@dataclass(frozen=True)
class Holder:
    """An open holder transaction and the snapshot it exported."""

    pg: asyncpg.Connection
    id: str

    async def label(self, label: str) -> None:
        """Label the session until the transaction ends (``set_config(..., true)``)."""
        await self.pg.execute("SELECT set_config('application_name', $1, true)", label)


@asynccontextmanager
async def hold(pg: asyncpg.Connection, name: str, idle_timeout_ms: int) -> AsyncIterator[Holder]:
    """Open the holder transaction of collection ``name`` (404 if it does not exist).

    ``idle_timeout_ms`` bounds the idle transaction server-side too: should the worker
    hang, PostgreSQL ends the holder itself a little after the snapshot's lifetime.
    """
    async with pg.transaction(isolation="repeatable_read", readonly=True):
        # SET does not take bind parameters; the value is an int from settings.
        await pg.execute(f"SET LOCAL idle_in_transaction_session_timeout = {int(idle_timeout_ms)}")
        await collection_id(pg, name)
        snapshot = await pg.fetchval("SELECT pg_export_snapshot()")
        yield Holder(pg, str(snapshot))


async def is_held(pg: asyncpg.Connection, label: str) -> bool:
    """Whether a session of this database carries ``label`` (a holder of this service).

    A role sees its own sessions' ``application_name`` in ``pg_stat_activity``; holders
    and readers connect as the same runtime role.
    """
    found = await pg.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = $1)",
        label,
    )
    return bool(found)


async def _import(pg: asyncpg.Connection, snapshot: Imported) -> None:
    """``SET TRANSACTION SNAPSHOT``: the first statement of the reading transaction."""
    if not SNAPSHOT_ID.fullmatch(snapshot.id):
        raise SnapshotGoneError
    try:
        await pg.execute(f"SET TRANSACTION SNAPSHOT '{snapshot.id}'")
    except asyncpg.PostgresError as error:
        if getattr(error, "sqlstate", None) in _GONE:
            raise SnapshotGoneError from None
        raise


async def _position(pg: asyncpg.Connection, cid: int, doc_id: str) -> tuple[datetime, str]:
    """The keyset position ``(created_at, id)`` of ``doc_id`` in this snapshot."""
    at = await pg.fetchval(
        "SELECT created_at FROM ml_documents WHERE collection_id = $1 AND id = $2", cid, doc_id
    )
    if at is None:
        raise ResumePointGoneError(doc_id)
    created: datetime = at
    return created, doc_id


@asynccontextmanager
async def reading(
    pg: asyncpg.Connection,
    name: str,
    q: DocumentQuery,
    idle_timeout_ms: int,
    *,
    snapshot: Imported | None = None,
    resume: str | None = None,
) -> AsyncIterator[tuple[int, DocumentQuery]]:
    """One read-only snapshot (a held one when given): the collection's id and ``q``
    continued after document ``resume`` when given.

    ``idle_timeout_ms`` makes PostgreSQL end the session if the worker stops asking.
    """
    if snapshot is not None and not await is_held(pg, snapshot.label):
        raise SnapshotGoneError
    async with pg.transaction(isolation="repeatable_read", readonly=True):
        if snapshot is not None:
            await _import(pg, snapshot)
        await pg.execute(f"SET LOCAL idle_in_transaction_session_timeout = {int(idle_timeout_ms)}")
        cid = await collection_id(pg, name)
        if resume is not None:
            at, doc_id = await _position(pg, cid, resume)
            q = dataclasses.replace(q, after=(at, doc_id))
        yield cid, q


@asynccontextmanager
async def held(store: Store, name: str, idle_timeout_ms: int) -> AsyncIterator[Holder]:
    """A holder of collection ``name`` on a connection of the store's holder pool."""
    async with store.raw(holder=True) as pg, hold(pg, name, idle_timeout_ms) as holder:
        yield holder
