"""The OpenAPI description of the cache endpoints, built from the request/response models."""

from __future__ import annotations

from typing import Any

from services.cache.api import READ, WRITE
from services.cache.schemas import (
    MAX_KEY_BYTES,
    CounterValue,
    Entry,
    IncrRequest,
    MgetRequest,
    MgetResponse,
    MsetRequest,
    MsetResponse,
    PutValue,
)
from services.cache.settings import CacheSettings
from services.common.openapi import Operation, Param, build_openapi
from services.common.openapi_health import health_operations
from services.common.problems import COMMON_PROBLEM_TYPES

_KEY = Param(
    "key",
    "path",
    {"type": "string", "minLength": 1, "maxLength": MAX_KEY_BYTES, "pattern": r"^[^\s]+$"},
    required=True,
    description="1..512 bytes of printable characters without whitespace, percent-encoded",
)
_IF_NONE_MATCH = Param(
    "If-None-Match",
    "header",
    {"type": "string", "enum": ["*"]},
    description="`*` stores only when the key is absent (412 key-exists otherwise)",
)
#: Every problem type the cache service answers: slug -> (status, meaning).
PROBLEM_TYPES: dict[str, tuple[int, str]] = {
    **COMMON_PROBLEM_TYPES,
    "key-not-found": (404, "no value (or counter) is stored under this key"),
    "counter-overflow": (409, "the increment would leave the signed 64-bit range"),
    "key-exists": (412, "If-None-Match: * and a value is already stored under this key"),
    "value-too-large": (413, "a value encodes to more than MAX_VALUE_BYTES of JSON"),
}
# 503 store-unavailable may come from every data endpoint; 422 from every bad key or body.
_STORE = (422, 503)


def operations() -> list[Operation]:
    """Every endpoint of the cache service."""
    return [*health_operations(), *_v1()]


def _v1() -> list[Operation]:
    return [
        Operation("GET", "/v1/kv/{key}", "Read a value and its remaining TTL", (READ,),
                  response=Entry, errors=(404, *_STORE), params=(_KEY,)),
        Operation("PUT", "/v1/kv/{key}", "Store a value (optionally only if absent)", (WRITE,),
                  request=PutValue, response=Entry, errors=(400, 412, 413, 415, *_STORE),
                  params=(_KEY, _IF_NONE_MATCH)),
        Operation("DELETE", "/v1/kv/{key}", "Delete a value", (WRITE,), status=204,
                  errors=(404, *_STORE), params=(_KEY,)),
        Operation("POST", "/v1/kv:mget", "Read many values", (READ,), request=MgetRequest,
                  response=MgetResponse, errors=(400, 415, *_STORE)),
        Operation("POST", "/v1/kv:mset", "Store many values atomically", (WRITE,),
                  request=MsetRequest, response=MsetResponse, errors=(400, 413, 415, *_STORE)),
        Operation("POST", "/v1/counters/{key}:incr", "Increment a counter atomically", (WRITE,),
                  request=IncrRequest, response=CounterValue, errors=(400, 409, 415, *_STORE),
                  params=(_KEY,)),
        Operation("GET", "/v1/counters/{key}", "Read a counter", (READ,),
                  response=CounterValue, errors=(404, *_STORE), params=(_KEY,)),
    ]  # fmt: skip


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
        operations=operations(),
        problem_types=PROBLEM_TYPES,
    )
