"""RFC 9457 problem details: one exception type every service raises and renders.

Frameworks plug in one handler each that calls :func:`Problem.to_dict` and sends
``application/problem+json``. A 5xx body never carries a stack trace or SQL text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, NamedTuple

from pydantic import ValidationError

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:strata:problem:"

#: The problem types this package and the framework glue emit: slug -> (status, meaning).
#: Each service adds its own and publishes the whole list in its OpenAPI document.
COMMON_PROBLEM_TYPES: dict[str, tuple[int, str]] = {
    "bad-request": (400, "the request is malformed at the HTTP level (framework refusal)"),
    "malformed-json": (
        400,
        "the body is empty, not UTF-8, not JSON, or holds a number beyond a double's range",
    ),
    "unauthorized": (
        401,
        "no bearer token, or one that is invalid, expired, for another audience, not ASCII, "
        "or whose sub is blank or over 255 characters",
    ),
    "insufficient-scope": (403, "the token lacks a scope the endpoint needs"),
    "not-found": (404, "no such route"),
    "method-not-allowed": (405, "the path does not take this method; Allow names those it does"),
    "payload-too-large": (413, "the body is over the configured limit"),
    "unsupported-media-type": (415, "the body's Content-Type is not one the endpoint reads"),
    "validation-failed": (
        422,
        "a path, query or header parameter, or the body, breaks a rule; errors[] names each",
    ),
    "internal-error": (500, "an unexpected error (never with details)"),
    "store-unavailable": (503, "the store is down or too slow; retry after Retry-After"),
}


class Problem(Exception):  # noqa: N818 - the RFC's own name for it
    """An HTTP error with a stable slug, rendered as problem+json."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str | None = None,
        *,
        title: str | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.slug = slug
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail or self.title
        self.errors = list(errors) if errors else None
        self.headers = dict(headers or {})
        super().__init__(f"{status} {slug}: {self.detail}")

    def to_dict(self) -> dict[str, Any]:
        """The problem+json body."""
        body: dict[str, Any] = {
            "type": TYPE_PREFIX + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def bad_json(detail: str = "request body is not valid JSON") -> Problem:
    """400 for a body that cannot be parsed."""
    return Problem(400, "malformed-json", detail)


def body_too_large(limit: int) -> Problem:
    """413 for a body over the configured limit."""
    return Problem(413, "payload-too-large", f"request body exceeds {limit} bytes")


def not_found(detail: str = "no such route") -> Problem:
    """404 for an unknown route."""
    return Problem(404, "not-found", detail)


def method_not_allowed(allowed: Iterable[str] = ()) -> Problem:
    """405 with the ``Allow`` header (RFC 9110 requires it, even when empty)."""
    allow = ", ".join(sorted(set(allowed)))
    detail = f"this resource allows {allow}" if allow else "this resource allows no method"
    return Problem(405, "method-not-allowed", detail, headers={"Allow": allow})


def unsupported_media_type(expected: str) -> Problem:
    """415 when the body is not of a type the endpoint reads."""
    return Problem(415, "unsupported-media-type", f"expected {expected}")


def store_unavailable(store: str, retry_after: int = 1) -> Problem:
    """503 when the backing store cannot be reached in time."""
    return Problem(
        503,
        "store-unavailable",
        f"the {store} is unavailable; retry later",
        headers={"Retry-After": str(retry_after)},
    )


#: nginx's status for "the client closed the connection before the answer": never sent,
#: only recorded (metrics, the log line) so aborted requests are not counted as 5xx.
CLIENT_CLOSED_REQUEST = 499


def client_closed_request() -> Problem:
    """499: the client went away before the answer was ready (recorded, never sent)."""
    return Problem(
        CLIENT_CLOSED_REQUEST,
        "client-closed-request",
        "the client closed the connection before the answer was sent",
        title="Client Closed Request",
    )


def internal_error() -> Problem:
    """500 with no detail that could leak internals."""
    return Problem(500, "internal-error", "an unexpected error occurred")


class Refusal(NamedTuple):
    """The problem type a domain refusal is answered with, and what it means."""

    status: int
    slug: str
    #: Its meaning in the OpenAPI document; "" keeps the words of a catalogue elsewhere.
    meaning: str = ""


def refused(
    error: BaseException,
    table: Mapping[type[Any], Refusal],
    headers: Mapping[str, str] | None = None,
) -> Problem | None:
    """The problem ``table`` maps ``error``'s class to, with the error's own words as the
    detail; None when the table does not hold it."""
    found = table.get(type(error))
    if found is None:
        return None
    return Problem(found.status, found.slug, str(error), headers=dict(headers or {}))


def catalogue(*tables: Iterable[Refusal]) -> dict[str, tuple[int, str]]:
    """:data:`COMMON_PROBLEM_TYPES` and the problem types of ``tables`` (slug -> (status,
    meaning)); a later meaning replaces an earlier one, a blank one keeps it."""
    types = dict(COMMON_PROBLEM_TYPES)
    for table in tables:
        types.update({r.slug: (r.status, r.meaning) for r in table if r.meaning})
    return types


def validation_failed(
    errors: Sequence[Mapping[str, Any]], detail: str = "request validation failed"
) -> Problem:
    """422 listing each failing field as ``{"loc": [...], "msg": "..."}``."""
    return Problem(422, "validation-failed", detail, errors=errors)


def from_validation_error(exc: ValidationError, prefix: Sequence[str | int] = ()) -> Problem:
    """Turn a pydantic ValidationError into a 422 problem without echoing input values."""
    errors = [
        {"loc": [*prefix, *err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    return validation_failed(errors)
