"""The OpenAPI operations every service has: probes, metrics and the document itself.

They take no token; ``/readyz`` answers 503 with the same body as its 200, naming the
failing check (or ``draining``).
"""

from __future__ import annotations

from typing import Any

from services.common.openapi import Operation

_PROBES: dict[str, Any] = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"enum": ["ok", "unavailable"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def health_operations() -> tuple[Operation, ...]:
    """``/livez``, ``/readyz``, ``/metrics`` and ``/openapi.json``: no token, every service."""
    return (
        Operation(
            "GET",
            "/livez",
            "Liveness: the process can serve (never touches a store)",
            response_schema={
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"const": "ok"}},
            },
        ),
        Operation(
            "GET",
            "/readyz",
            "Readiness: the store answers in time, and the process is not draining",
            response_schema=_PROBES,
            errors=(503,),
            error_schema=_PROBES,  # the same body as 200, naming the failing check
            error_content_type="application/json",
        ),
        Operation(
            "GET",
            "/metrics",
            "Prometheus metrics of every worker",
            response_schema={"type": "string"},
            response_content_type="text/plain",
        ),
        Operation(
            "GET",
            "/openapi.json",
            "This document",
            response_schema={"type": "object", "required": ["openapi", "paths"]},
        ),
    )
