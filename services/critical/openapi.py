"""The critical service's OpenAPI document, built from the request/response models.

Each operation lists the problem types it may answer with (``problem_types``); every
error response names exactly those slugs, so a fuzzer checking response schemas also
checks that no undocumented problem escapes. Health, metrics and this document are in
it too.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from services.common.openapi import Operation, Param, build_openapi
from services.critical.problem_types import PROBLEM_TYPES, statuses
from services.critical.schemas import (
    AccountCreate,
    AccountOut,
    AccountPage,
    AccountPatch,
    EntryPage,
    Movement,
    TransferCreate,
    TransferOut,
)

_UUID = {"type": "string", "format": "uuid"}
_PAGE = (
    Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}),
    Param("cursor", "query", {"type": "string"}, description="next_cursor of the previous page"),
)
# Printable ASCII without leading or trailing spaces (HTTP strips those); the service
# also takes other printable characters, which not every HTTP stack carries intact.
_KEY_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": "^[!-~]([ -~]*[!-~])?$",
}
_KEY_TEXT = "1..255 printable characters; a replay with the same key and body gets the first answer"
_KEY = Param("Idempotency-Key", "header", _KEY_SCHEMA, description=_KEY_TEXT)
_OWNER = Param("owner", "query", {"type": "string"}, description="only this owner's accounts")
_ACCOUNT = Param("account_id", "path", _UUID, required=True)
_IF_MATCH = Param(
    "If-Match",
    "header",
    {"type": "string", "pattern": '^ *(\\*|(W/)?"?[0-9]{1,10}"?) *$'},
    description='the account version: 3, "3" or W/"3" (ASCII digits), or * for any',
)

_AUTH = ("unauthorized", "insufficient-scope")
_STORE = ("store-unavailable",)
_BODY = (
    "bad-request",
    "malformed-json",
    "payload-too-large",
    "unsupported-media-type",
    "validation-failed",
)
# A path parameter holding an encoded "/" can land on another route, or on none.
_PATH = ("not-found", "method-not-allowed", "validation-failed")
_LIST = ("invalid-cursor", "validation-failed")
_MOVE = ("account-not-found", "account-not-active", "amount-out-of-range", "idempotency-key-reuse")

_READINESS = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_HEADER = {"schema": {"type": "string"}}
_ETAG = {"ETag": {**_HEADER, "description": 'the account version, quoted ("3")'}}
_REPLAYED = {
    "Idempotent-Replayed": {
        **_HEADER,
        "description": "true when this is the stored answer to an earlier request with the key",
    }
}


class Endpoint(NamedTuple):
    """An operation, the problem types it may answer with, and its success headers."""

    operation: Operation
    problems: tuple[str, ...] = ()
    headers: dict[str, Any] | None = None


def _op(
    method: str,
    path: str,
    summary: str,
    scope: str,
    problems: tuple[str, ...],
    headers: dict[str, Any] | None = None,
    **fields: Any,
) -> Endpoint:
    slugs = tuple(dict.fromkeys((*_AUTH, *problems, *_STORE)))  # ordered, no repeats
    operation = Operation(method, path, summary, (scope,), errors=tuple(statuses(slugs)), **fields)
    return Endpoint(operation, slugs, headers)


ENDPOINTS = (
    _op("POST", "/v1/accounts", "Open an account", "accounts:write", _BODY,
        {**_ETAG, "Location": _HEADER}, request=AccountCreate, response=AccountOut, status=201),
    _op("GET", "/v1/accounts", "List accounts (oldest first)", "accounts:read", _LIST,
        response=AccountPage, params=(_OWNER, *_PAGE)),
    _op("GET", "/v1/accounts/{account_id}", "Get an account", "accounts:read",
        (*_PATH, "account-not-found"), _ETAG, response=AccountOut, params=(_ACCOUNT,)),
    _op("PATCH", "/v1/accounts/{account_id}", "Change an account's status", "ledger:admin",
        (*_PATH, *_BODY, "account-not-found", "account-not-empty", "version-mismatch"), _ETAG,
        request=AccountPatch, response=AccountOut, params=(_ACCOUNT, _IF_MATCH)),
    _op("POST", "/v1/accounts/{account_id}/deposits", "Deposit from outside the ledger",
        "ledger:admin", (*_PATH, *_BODY, *_MOVE), _REPLAYED, request=Movement,
        response=TransferOut, status=201, params=(_ACCOUNT, _KEY)),
    _op("POST", "/v1/accounts/{account_id}/withdrawals", "Withdraw to outside the ledger",
        "ledger:admin", (*_PATH, *_BODY, *_MOVE, "insufficient-funds"), _REPLAYED,
        request=Movement, response=TransferOut, status=201, params=(_ACCOUNT, _KEY)),
    _op("GET", "/v1/accounts/{account_id}/entries", "List an account's entries (newest first)",
        "accounts:read", (*_PATH, *_LIST, "account-not-found"), response=EntryPage,
        params=(_ACCOUNT, *_PAGE)),
    _op("POST", "/v1/transfers", "Transfer between two customer accounts", "transfers:write",
        (*_BODY, "idempotency-key-missing", *_MOVE, "insufficient-funds", "currency-mismatch",
         "same-account"), _REPLAYED, request=TransferCreate, response=TransferOut, status=201,
        params=(Param(_KEY.name, "header", _KEY_SCHEMA, required=True, description=_KEY_TEXT),)),
    _op("GET", "/v1/transfers/{transfer_id}", "Get a transfer", "accounts:read",
        (*_PATH, "transfer-not-found"), response=TransferOut,
        params=(Param("transfer_id", "path", _UUID, required=True),)),
    Endpoint(Operation("GET", "/livez", "Liveness (never touches the database)",
                       response_schema={"type": "object", "required": ["status"],
                                        "properties": {"status": {"const": "ok"}}})),
    Endpoint(Operation("GET", "/readyz", "Readiness: 503 when PostgreSQL does not answer or "
                       "the process is draining", response_schema=_READINESS, errors=(503,))),
    Endpoint(Operation("GET", "/metrics", "Prometheus metrics of every worker",
                       response_schema={"type": "string"}, response_content_type="text/plain")),
    Endpoint(Operation("GET", "/openapi.json", "This document",
                       response_schema={"type": "object"})),
)  # fmt: skip


def _problem_response(slugs: list[str]) -> dict[str, Any]:
    status = PROBLEM_TYPES[slugs[0]].status
    response: dict[str, Any] = {
        "description": "; ".join(f"`{s}`: {PROBLEM_TYPES[s].meaning}" for s in slugs),
        "content": {
            "application/problem+json": {
                "schema": {
                    "allOf": [{"$ref": "#/components/schemas/Problem"}],
                    "properties": {
                        "type": {"enum": [f"urn:strata:problem:{s}" for s in slugs]},
                        "status": {"const": status},
                    },
                }
            }
        },
    }
    headers = {
        401: {"WWW-Authenticate": _HEADER},
        403: {"WWW-Authenticate": _HEADER},
        405: {"Allow": _HEADER},
        503: {"Retry-After": _HEADER},
    }.get(status)
    if headers:
        response["headers"] = headers
    return response


def document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    built = build_openapi(
        title="Strata critical — accounts and transfers",
        version=version,
        description="A ledger in integer minor units. Errors are RFC 9457 problem details "
        "(application/problem+json); every response carries X-Request-ID.",
        operations=[e.operation for e in ENDPOINTS],
    )
    for endpoint in ENDPOINTS:
        op = endpoint.operation
        responses = built["paths"][op.path][op.method.lower()]["responses"]
        for slugs in statuses(endpoint.problems).values():
            responses[str(PROBLEM_TYPES[slugs[0]].status)] = _problem_response(slugs)
        if endpoint.headers:
            responses[str(op.status)]["headers"] = dict(endpoint.headers)
        replays = "Idempotent-Replayed" in (endpoint.headers or {})
        for status, response in responses.items():
            if replays and status in ("404", "409", "422"):  # stored refusals are replayed
                response.setdefault("headers", {}).update(_REPLAYED)
            response.setdefault("headers", {})["X-Request-ID"] = _HEADER
    readyz = built["paths"]["/readyz"]["get"]["responses"]
    readyz["503"] = {
        "description": "not ready",
        "content": {"application/json": {"schema": _READINESS}},
        "headers": {"X-Request-ID": _HEADER},
    }
    return built
