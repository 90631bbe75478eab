"""What the cache service's OpenAPI document says about itself, and its endpoints."""

from __future__ import annotations

from services.cache.api import counters, kv
from services.cache.api.errors import PROBLEM_TYPES
from services.common.endpoint import Endpoint
from services.common.openapi import ServiceInfo

#: Every ``/v1`` endpoint, each declared once beside its handler.
ENDPOINTS: tuple[Endpoint, ...] = (*kv.routes.endpoints, *counters.routes.endpoints)

INFO = ServiceInfo(
    title="Strata cache",
    description="""Key-value and counters on Redis. Errors are RFC 9457 problem details.

HEAD is answered wherever GET is (same status and headers, no body). No endpoint takes
query parameters (422). Integers in values are kept exactly whatever their size; counters
are signed 64-bit.""",
    problem_types=PROBLEM_TYPES,
)
