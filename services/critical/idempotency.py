"""Idempotency keys: a request replayed with the same key and body gets the same answer.

The key row is inserted first, in the request's own transaction. A concurrent duplicate
blocks on the primary key until the first commits, then finds the stored outcome; so
one key moves money at most once. Decisions (201 and the domain 4xx answers) are
stored; failures of the store itself are not, so a retry after a 503 runs again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from services.critical.errors import IdempotencyKeyReuseError, LedgerError
from services.critical.models import IdempotencyKey

#: What a request asks for and what it got: an HTTP status and a JSON body, opaque here.
Answer = tuple[int, dict[str, Any]]


@dataclass(frozen=True)
class StoredResponse:
    """A response recorded under a key."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """The answer to an idempotent write, and whether it is the stored one."""

    status: int
    body: dict[str, Any]
    replayed: bool


def fingerprint(scope: str, payload: dict[str, Any]) -> str:
    """A stable hash of what was asked (endpoint plus canonical body)."""
    canonical = orjson.dumps({"scope": scope, "body": payload}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def claim(session: Session, subject: str, key: str, request_hash: str) -> StoredResponse | None:
    """Claim ``key`` for this request, or return the outcome recorded by an earlier one.

    Returns None when this request owns the key and must do the work, then call
    :func:`record` in the same transaction.
    """
    inserted = session.execute(
        pg_insert(IdempotencyKey)
        .values(subject=subject, key=key, request_hash=request_hash, status_code=0, response={})
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    ).scalar_one_or_none()
    if inserted is not None:
        return None
    stored = session.scalars(
        select(IdempotencyKey).where(IdempotencyKey.subject == subject, IdempotencyKey.key == key)
    ).one()
    if stored.request_hash != request_hash:
        raise IdempotencyKeyReuseError()
    # The replay acknowledges the original outcome again: a (no-op) write makes this
    # transaction's COMMIT wait, like any write, until synchronous standbys confirm the WAL
    # before it, the original transaction included (else commit_guard answers 503).
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.subject == subject, IdempotencyKey.key == key)
        .values(status_code=IdempotencyKey.status_code)
        .execution_options(synchronize_session=False)
    )
    return StoredResponse(stored.status_code, stored.response)


def record(session: Session, subject: str, key: str, status: int, body: dict[str, Any]) -> None:
    """Store the outcome under the claimed key (same transaction as the work)."""
    stored = session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.subject == subject, IdempotencyKey.key == key)
        .values(status_code=status, response=body)
        .execution_options(synchronize_session=False)
    )
    assert stored.rowcount == 1, "record() without claim()"  # type: ignore[attr-defined]


def once(
    session: Session,
    subject: str,
    key: str,
    request_hash: str,
    work: Callable[[Session], Answer],
    refused: Callable[[LedgerError], Answer],
) -> Outcome:
    """Run ``work`` at most once per (subject, key), in one transaction; replay otherwise.

    A refusal of the ledger is a decision: ``refused`` turns it into the answer that is
    stored and replayed. Anything else (a store failure) is raised and stores nothing,
    so a retry runs again.
    """
    with session.begin():
        stored = claim(session, subject, key, request_hash)
        if stored is not None:
            return Outcome(stored.status, stored.body, replayed=True)
        try:
            with session.begin_nested():
                status, body = work(session)
        except LedgerError as refusal:
            status, body = refused(refusal)
        record(session, subject, key, status, body)
    return Outcome(status, body, replayed=False)
