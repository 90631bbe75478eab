"""CORS decisions, framework-neutral: off unless origins are configured."""

from __future__ import annotations

from collections.abc import Sequence

ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOWED_HEADERS = (
    "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, X-Request-ID"
)
# Response headers browser code may read besides the CORS-safelisted ones: everything a
# client acts on (versions, replays, retry hints, new resources, auth challenges).
EXPOSED_HEADERS = (
    "X-Request-ID, ETag, Idempotent-Replayed, Retry-After, Location, Allow, WWW-Authenticate"
)


def cors_headers(origin: str | None, allowed: Sequence[str], *, preflight: bool) -> dict[str, str]:
    """Headers to add for this request's ``Origin`` (empty when CORS does not apply).

    Credentials are never allowed, so ``*`` is safe to echo as-is.
    """
    if not origin or not allowed:
        return {}
    if "*" in allowed:
        allow_origin = "*"
    elif origin in allowed:
        allow_origin = origin
    else:
        return {}
    headers = {"Access-Control-Allow-Origin": allow_origin, "Vary": "Origin"}
    if preflight:
        headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        headers["Access-Control-Max-Age"] = "600"
    else:
        headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    return headers
