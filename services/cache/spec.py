"""The cache service's endpoints and its OpenAPI document, built from their declarations."""

from __future__ import annotations

from typing import Any

from services.cache.api import counters, kv
from services.cache.settings import CacheSettings
from services.common.endpoint import Endpoint
from services.common.openapi import build_openapi
from services.common.openapi_health import health_operations
from services.common.problems import COMMON_PROBLEM_TYPES

#: Every ``/v1`` endpoint, each declared once beside its handler.
ENDPOINTS: tuple[Endpoint, ...] = (*kv.routes.endpoints, *counters.routes.endpoints)

#: Every problem type the cache service answers: slug -> (status, meaning).
PROBLEM_TYPES: dict[str, tuple[int, str]] = {
    **COMMON_PROBLEM_TYPES,
    "key-not-found": (404, "no value (or counter) is stored under this key"),
    "counter-overflow": (409, "the increment would leave the signed 64-bit range"),
    "key-exists": (412, "If-None-Match: * and a value is already stored under this key"),
    "value-too-large": (413, "a value encodes to more than MAX_VALUE_BYTES of JSON"),
}

DESCRIPTION = """Key-value and counters on Redis. Errors are RFC 9457 problem details.

HEAD is answered wherever GET is (same status and headers, no body). No endpoint takes
query parameters (422). Integers in values are kept exactly whatever their size; counters
are signed 64-bit."""


def openapi_document(settings: CacheSettings) -> dict[str, Any]:
    """The service's OpenAPI 3.1 document."""
    return build_openapi(
        title="Strata cache",
        version=settings.version,
        description=DESCRIPTION,
        operations=[*health_operations(), *(e.operation for e in ENDPOINTS)],
        problem_types=PROBLEM_TYPES,
    )
