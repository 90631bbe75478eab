"""The endpoints every service has: probes, metrics and the OpenAPI document itself.

Declared once here for all three services: the Flask and the Sanic glue route each of
them from :data:`PROBES` (by :func:`route_name`), and every OpenAPI document lists them.
They take no token; ``/readyz`` answers 503 with the same body as its 200, naming the
failing check (or ``draining``).
"""

from __future__ import annotations

from typing import Any

from services.common.operation import Operation

_PROBES: dict[str, Any] = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"enum": ["ok", "unavailable"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


#: ``/livez``, ``/readyz``, ``/metrics`` and ``/openapi.json``: no token, every service.
PROBES: tuple[Operation, ...] = (
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


def route_name(probe: Operation) -> str:
    """The route (and metrics) name of a probe: ``livez``, ``readyz``, ``metrics``, ``openapi``."""
    return probe.path.strip("/").removesuffix(".json")
