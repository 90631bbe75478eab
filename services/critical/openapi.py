"""The critical service's OpenAPI document, built from the endpoint declarations.

Each endpoint lists the problem types it may answer with; every error response names
exactly those slugs, so a fuzzer checking response schemas also checks that no
undocumented problem escapes. Health, metrics and this document are in it too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from services.common.endpoint import Endpoint
from services.common.openapi import Operation, build_openapi
from services.critical.api import ENDPOINTS
from services.critical.api.declare import HEADER, REPLAYED
from services.critical.problem_types import PROBLEM_TYPES, statuses

_READINESS = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "unavailable"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
# The routes the Flask glue serves itself (services.critical.web.install).
_HEALTH = (
    Operation("GET", "/livez", "Liveness (never touches the database)",
              response_schema={"type": "object", "required": ["status"],
                               "properties": {"status": {"const": "ok"}}}),
    Operation("GET", "/readyz", "Readiness: 503 when PostgreSQL does not answer or the "
              "process is draining", response_schema=_READINESS, errors=(503,)),
    Operation("GET", "/metrics", "Prometheus metrics of every worker",
              response_schema={"type": "string"}, response_content_type="text/plain"),
    Operation("GET", "/openapi.json", "This document", response_schema={"type": "object"}),
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
        401: {"WWW-Authenticate": HEADER},
        403: {"WWW-Authenticate": HEADER},
        405: {"Allow": HEADER},
        503: {"Retry-After": HEADER},
    }.get(status)
    if headers:
        response["headers"] = headers
    return response


def document(version: str, endpoints: Iterable[Endpoint] = ENDPOINTS) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``endpoints`` and the health routes."""
    described: list[tuple[Operation, tuple[str, ...], Mapping[str, Any] | None]] = [
        (op, (), None) for op in _HEALTH
    ]
    described += [(e.operation, e.problems, e.headers) for e in endpoints]
    built = build_openapi(
        title="Strata critical — accounts and transfers",
        version=version,
        description="A ledger in integer minor units. Errors are RFC 9457 problem details "
        "(application/problem+json); every response carries X-Request-ID.",
        operations=[op for op, _, _ in described],
    )
    for op, problems, headers in described:
        responses = built["paths"][op.path][op.method.lower()]["responses"]
        for slugs in statuses(problems).values():
            responses[str(PROBLEM_TYPES[slugs[0]].status)] = _problem_response(slugs)
        if headers:
            responses[str(op.status)]["headers"] = dict(headers)
        replays = "Idempotent-Replayed" in (headers or {})
        for status, response in responses.items():
            if replays and status in ("404", "409", "422"):  # stored refusals are replayed
                response.setdefault("headers", {}).update(REPLAYED)
            response.setdefault("headers", {})["X-Request-ID"] = HEADER
    readyz = built["paths"]["/readyz"]["get"]["responses"]
    readyz["503"] = {
        "description": "not ready",
        "content": {"application/json": {"schema": _READINESS}},
        "headers": {"X-Request-ID": HEADER},
    }
    return built
