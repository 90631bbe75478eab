"""Snapshot tokens for sharded exports, and the snapshots one worker holds.

``POST .../export:snapshot`` opens a holder (:mod:`services.ml.store.snapshot`) in this
worker and answers a token; any worker of any pod then reads that snapshot with
``export?snapshot=<token>``, since PostgreSQL lets every session of the same server import
it. The token is URL-safe base64 of ``{"s": snapshot id, "c": collection, "e": expiry
(Unix seconds), "n": 128 random bits}``; the holder labels its session with a digest of
the whole token, which readers look for before importing (:func:`label`). A token that was
altered, or not issued by a holder still running, therefore names no labelled session.

A held snapshot keeps a connection and holds back vacuum on the whole database: each lives
``EXPORT_SNAPSHOT_TTL`` seconds at most, and a worker holds ``EXPORT_SNAPSHOTS_MAX`` at once
(429 ``too-many-snapshots`` with ``Retry-After`` beyond).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging
import math
import secrets
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import orjson

from services.common.problems import Problem
from services.ml.errors import SnapshotGoneError
from services.ml.params import COLLECTION_NAME
from services.ml.store.snapshot import SNAPSHOT_ID, Holder, Imported

logger = logging.getLogger("strata.ml.export")
_LABEL_PREFIX = "strata-ml-snapshot "  # + 40 hex digits: within application_name's 63 bytes


def invalid_snapshot() -> Problem:
    """400 ``invalid-snapshot``: not a token this service issues."""
    return Problem(400, "invalid-snapshot", "the snapshot token is not valid for this export")


def too_many_snapshots(limit: int, retry_after: int) -> Problem:
    """429 ``too-many-snapshots`` with ``Retry-After``."""
    return Problem(
        429,
        "too-many-snapshots",
        f"this worker already holds {limit} snapshots; retry after {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


def label(token: str) -> str:
    """The ``application_name`` of the session holding ``token``'s snapshot."""
    return _LABEL_PREFIX + hashlib.sha256(token.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Token:
    """A decoded token: what it names and until when."""

    snapshot: str
    collection: str
    expires: int

    def imported(self, raw: str) -> Imported:
        """What a reader imports, with the label its holder carries."""
        return Imported(self.snapshot, label(raw))


def encode(snapshot: str, collection: str, expires: int) -> str:
    """A new token (with a fresh nonce) for this snapshot."""
    body = {"s": snapshot, "c": collection, "e": expires, "n": secrets.token_hex(16)}
    return base64.urlsafe_b64encode(orjson.dumps(body)).rstrip(b"=").decode()


def decode(raw: str, collection: str, now: float | None = None) -> Token:
    """The token of ``?snapshot=`` for an export of ``collection``.

    400 ``invalid-snapshot`` unless it is shaped as the service makes them and names this
    collection; past its expiry, :class:`SnapshotGoneError` (410), as when a reader finds
    its holder gone.
    """
    try:
        if len(raw) > 512:
            raise ValueError(raw)
        padded = raw + "=" * (-len(raw) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError, orjson.JSONDecodeError):
        raise invalid_snapshot() from None
    if not isinstance(value, dict) or set(value) != {"s", "c", "e", "n"}:
        raise invalid_snapshot()
    s, c, e, n = value["s"], value["c"], value["e"], value["n"]
    valid = (
        isinstance(s, str)
        and SNAPSHOT_ID.fullmatch(s) is not None
        and isinstance(c, str)
        and COLLECTION_NAME.fullmatch(c) is not None
        and type(e) is int
        and isinstance(n, str)
        and len(n) == 32
    )
    if not valid or c != collection:
        raise invalid_snapshot()
    if e <= (time.time() if now is None else now):
        raise SnapshotGoneError
    return Token(s, c, e)


#: Opens a holder for a collection: the store's connection and transaction, as one context.
Opener = Callable[[str], AbstractAsyncContextManager[Holder]]


@dataclass(frozen=True)
class Issued:
    """A token answered to the client, and when its snapshot ends."""

    token: str
    expires: int


class SnapshotHolders:
    """The snapshots this worker holds: each a task keeping its holder open until expiry."""

    def __init__(self, limit: int, ttl: int) -> None:
        self.limit = limit
        self.ttl = ttl
        self._held: dict[asyncio.Task[None], int] = {}  # task -> expiry (Unix seconds)

    def retry_after(self) -> int:
        """Seconds until the first held snapshot ends."""
        soonest = min(self._held.values(), default=int(time.time()))
        return max(1, math.ceil(soonest - time.time()))

    async def take(self, opener: Opener, collection: str) -> Issued:
        """Open and hold a snapshot of ``collection``; its token once it is held.

        Errors of the opening (a missing collection, the store unavailable) are raised
        here. 429 when this worker holds ``limit`` already.
        """
        if len(self._held) >= self.limit:
            raise too_many_snapshots(self.limit, self.retry_after())
        issued: asyncio.Future[Issued] = asyncio.get_running_loop().create_future()
        expires = int(time.time()) + self.ttl
        task = asyncio.create_task(self._hold(opener, collection, expires, issued))
        self._held[task] = expires
        task.add_done_callback(self._forget)
        return await issued

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._held.pop(task, None)
        if not task.cancelled():
            task.exception()  # retrieved: a failed opening was already raised to the caller

    async def _hold(
        self, opener: Opener, collection: str, expires: int, issued: asyncio.Future[Issued]
    ) -> None:
        try:
            async with opener(collection) as holder:
                token = encode(holder.id, collection, expires)
                await holder.label(label(token))
                issued.set_result(Issued(token, expires))
                await asyncio.sleep(max(0.0, expires - time.time()))
        except BaseException as error:
            if isinstance(error, asyncio.CancelledError):
                if not issued.done():
                    issued.cancel()
                raise
            if not issued.done():
                issued.set_exception(error)
            else:  # the snapshot was in use: its readers now get 410
                logger.warning(
                    "held snapshot ended early: %s",
                    type(error).__name__,
                    extra={"collection": collection},
                )

    async def close(self) -> None:
        """End every held snapshot (the worker is stopping)."""
        tasks = list(self._held)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    def __len__(self) -> int:
        return len(self._held)
