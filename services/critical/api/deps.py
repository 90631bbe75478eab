"""What routes share: the audit actor, and the answer of an idempotent write."""

from __future__ import annotations

from collections.abc import Callable

from flask import Response
from sqlalchemy.orm import Session

from services.common.requestid import current_request_id
from services.critical import idempotency
from services.critical.api import errors
from services.critical.db import session
from services.critical.idempotency import Answer, Outcome
from services.critical.ledger import Actor
from services.critical.web import json_response


def actor(subject: str) -> Actor:
    """The audit actor of this request."""
    return Actor(subject=subject, request_id=current_request_id.get())


def idempotent_write(
    subject: str, key: str, request_hash: str, work: Callable[[Session], Answer]
) -> Response:
    """Run ``work`` at most once per (subject, key) and answer with its outcome."""
    return outcome_response(
        idempotency.once(session(), subject, key, request_hash, work, errors.answer)
    )


def outcome_response(outcome: Outcome) -> Response:
    """The answer of an idempotent write: its body and status, flagged when replayed."""
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else {}
    return json_response(outcome.body, outcome.status, headers)
