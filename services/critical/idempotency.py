"""Idempotency keys: a request replayed with the same key and body gets the same answer.

The key row is inserted first, in the request's own transaction. A concurrent duplicate
blocks on the primary key until the first commits, then finds the stored outcome; so
one key moves money at most once. Decisions (201 and the domain 4xx answers) are
stored; failures of the store itself are not, so a retry after a 503 runs again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from services.common.problems import Problem
from services.critical.models import IdempotencyKey

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    """A response recorded under a key."""

    status: int
    body: dict[str, Any]


def check_key(raw: str | None) -> str:
    """The header's value; 400 ``idempotency-key-missing`` when absent, 422 when malformed.

    An empty value is a malformed key, not a missing one: the header was sent.
    """
    if raw is None:
        raise Problem(400, "idempotency-key-missing", f"the {HEADER} header is required")
    if not 1 <= len(raw) <= MAX_KEY_LENGTH or not raw.isprintable():
        raise Problem(
            422,
            "validation-failed",
            "invalid Idempotency-Key",
            errors=[
                {
                    "loc": ["header", HEADER],
                    "msg": f"must be 1..{MAX_KEY_LENGTH} printable characters",
                }
            ],
        )
    return raw


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
        raise Problem(
            422,
            "idempotency-key-reuse",
            "this Idempotency-Key was already used with a different request",
        )
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
