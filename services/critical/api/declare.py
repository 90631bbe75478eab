"""How a critical endpoint is declared: its scope and the problem types it may answer.

Each operation lists its problem types; the error statuses of its OpenAPI entry follow
from them, so a fuzzer checking response schemas also checks that no undocumented problem
escapes. Every operation may answer 401, 403 and 503 besides its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from services.common.endpoint import Routes
from services.common.openapi import by_status
from services.critical.problem_types import PROBLEM_TYPES

H = TypeVar("H", bound=Callable[..., Any])

_AUTH = ("unauthorized", "insufficient-scope")
_STORE = ("store-unavailable",)
BODY = (
    "bad-request",
    "malformed-json",
    "payload-too-large",
    "unsupported-media-type",
    "validation-failed",
)
# A path parameter holding an encoded "/" can land on another route, or on none.
PATH = ("not-found", "method-not-allowed", "validation-failed")
LIST = ("invalid-cursor", "validation-failed")
MOVE = ("account-not-found", "account-not-active", "amount-out-of-range", "idempotency-key-reuse")

HEADER: dict[str, Any] = {"schema": {"type": "string"}}
ETAG = {"ETag": {**HEADER, "description": 'the account version, quoted ("3")'}}
REPLAYED = {
    "Idempotent-Replayed": {
        **HEADER,
        "description": "true when this is the stored answer to an earlier request with the key",
    }
}
# The refusals an idempotency key stores, and so replays with Idempotent-Replayed.
_STORED = (404, 409, 422)


def declare(
    routes: Routes,
    method: str,
    path: str,
    summary: str,
    scope: str,
    problems: tuple[str, ...],
    headers: Mapping[str, Any] | None = None,
    **fields: Any,
) -> Callable[[H], H]:
    """Declare a ``/v1`` endpoint on ``routes`` that needs ``scope``."""
    slugs = tuple(dict.fromkeys((*_AUTH, *problems, *_STORE)))  # ordered, no repeats
    replays = headers is not None and "Idempotent-Replayed" in headers
    return routes(
        method,
        path,
        summary,
        scopes=(scope,),
        errors=tuple(by_status(slugs, PROBLEM_TYPES)),
        problems=slugs,
        headers=headers,
        error_headers=dict.fromkeys(_STORED, REPLAYED) if replays else None,
        **fields,
    )
