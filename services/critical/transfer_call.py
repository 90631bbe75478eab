"""A customer transfer in one round trip: ``ledger_transfer()`` (migration 0003) in autocommit.

The function claims the idempotency key, locks and checks both accounts, writes the
transfer, its entries and the audit row, and stores the 201 answer, all in the one
statement that is its own transaction; or it answers with the stored outcome of the key.
Anything the ledger refuses it declines (writing nothing), and :func:`call` returns None:
the caller then takes the general path (``idempotency.once`` with ``ledger.transfer``),
which decides again and stores the refusal with its problem+json body. Refusals are rare;
the common outcomes cost one round trip instead of about twelve.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from services.critical import commit_guard
from services.critical.autocommit import driver_autocommit
from services.critical.errors import IdempotencyKeyReuseError
from services.critical.idempotency import Outcome

# psycopg2 binds client-side; the function's typed signature casts the literals.
_CALL = (
    "SELECT outcome, status_code, response FROM ledger_transfer(%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


@dataclass(frozen=True)
class TransferRequest:
    """What one ``POST /v1/transfers`` asks for, and who asks (for the key and the audit)."""

    subject: str
    key: str
    request_hash: str
    source: uuid.UUID
    target: uuid.UUID
    amount: int
    currency: str
    reference: str
    request_id: str | None


@dataclass(frozen=True)
class Caller:
    """Runs the call on ``engine`` under the commit guards of its sessions."""

    engine: Engine
    watchdog: commit_guard.CommitWatchdog
    statement_seconds: float

    def call(self, request: TransferRequest) -> Outcome | None:
        """The transfer's outcome (new or replayed), or None when the ledger declined it.

        Raises :class:`IdempotencyKeyReuseError` for a key used with another request (not
        stored, as on the general path) and the store's errors as they come (a 503).
        """
        params = (
            request.subject,
            request.key,
            request.request_hash,
            str(request.source),
            str(request.target),
            request.amount,
            request.currency,
            request.reference,
            request.request_id,
        )
        with (
            self.engine.connect() as conn,
            driver_autocommit(conn),
            commit_guard.autocommitted(self.watchdog, conn, self.statement_seconds),
        ):
            outcome, status, body = conn.exec_driver_sql(_CALL, params).one()
        if outcome == "reuse":
            raise IdempotencyKeyReuseError()
        if outcome == "declined":
            return None
        return Outcome(status, body, replayed=outcome == "replay")
