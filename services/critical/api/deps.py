"""What every route needs: the request's session, the actor, validation, idempotent writes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, current_app, g
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from services.common.problems import Problem, from_validation_error
from services.common.requestid import current_request_id
from services.critical import idempotency
from services.critical.ledger import Actor
from services.critical.web import json_body, json_response

M = TypeVar("M", bound=BaseModel)
EXTENSION = "strata.sessionmaker"
# Decisions worth replaying; anything else (validation, 5xx) is not stored.
_STORED_ERRORS = {404, 409, 422}


def session() -> Session:
    """The request's session, opened lazily and closed at app-context teardown."""
    if "strata_session" not in g:
        factory: sessionmaker[Session] = current_app.extensions[EXTENSION]
        g.strata_session = factory()
    current: Session = g.strata_session
    return current


def close_session(exc: BaseException | None = None) -> None:
    """Teardown hook: return the connection to the pool whatever happened."""
    current: Session | None = g.pop("strata_session", None)
    if current is not None:
        current.close()


def actor(subject: str) -> Actor:
    """The audit actor of this request."""
    return Actor(subject=subject, request_id=current_request_id.get())


def validated(model: type[M]) -> tuple[M, dict[str, Any]]:
    """The JSON body validated against ``model`` (422 listing each field), and its raw dict."""
    payload = json_body()
    if not isinstance(payload, dict):
        raise Problem(
            422,
            "validation-failed",
            "request body must be a JSON object",
            errors=[{"loc": ["body"], "msg": "must be an object"}],
        )
    try:
        return model.model_validate(payload), payload
    except ValidationError as exc:
        raise from_validation_error(exc, ("body",)) from None


def idempotent_write(
    subject: str,
    key: str,
    request_hash: str,
    work: Callable[[Session], tuple[int, dict[str, Any]]],
) -> Response:
    """Run ``work`` at most once per (subject, key); replay the stored outcome otherwise."""
    db = session()
    with db.begin():
        stored = idempotency.claim(db, subject, key, request_hash)
        if stored is not None:
            return json_response(stored.body, stored.status, {"Idempotent-Replayed": "true"})
        try:
            with db.begin_nested():
                status, body = work(db)
        except Problem as problem:
            if problem.status not in _STORED_ERRORS:
                raise
            status, body = problem.status, problem.to_dict()
        idempotency.record(db, subject, key, status, body)
    return json_response(body, status)
