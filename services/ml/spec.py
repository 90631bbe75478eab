"""The ml endpoints described once for ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from services.common.openapi import Operation, Param, build_openapi
from services.common.openapi_health import health_operations
from services.common.problems import COMMON_PROBLEM_TYPES
from services.ml import schemas
from services.ml.params import COLLECTION_NAME, DOCUMENT_ID, MAX_FIELDS

_NAME = Param("name", "path", {"type": "string", "pattern": COLLECTION_NAME.pattern}, True)
_ID = Param("id", "path", {"type": "string", "pattern": DOCUMENT_ID.pattern}, True)
_IF_MATCH = Param("If-Match", "header", {"type": "string", "pattern": r'^(W/)?"?[0-9]{1,18}"?$'})
_LIMIT = Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000})
_CURSOR = Param("cursor", "query", {"type": "string"})
_FILTER = Param(
    "filter", "query", {"type": "string"}, description="URL-encoded JSON object (containment)"
)
_RANGE = (
    Param("created_after", "query", {"type": "string", "format": "date-time"}),
    Param("created_before", "query", {"type": "string", "format": "date-time"}),
)
_FIELDS = Param(
    "fields",
    "query",
    {"type": "string"},
    description=f"comma-separated dotted paths, at most {MAX_FIELDS}",
)
_BULK_CONTENT: dict[str, dict[str, Any]] = {
    "application/x-ndjson": {
        "type": "string",
        "description": "one JSON object (a document's data) per line",
    },
    "application/json": {"type": "array", "items": {"type": "object"}},
}
_MERGE_SCHEMA: dict[str, Any] = {"type": "object"}
_C = "/v1/collections"
_D = _C + "/{name}/documents"
_R, _W, _A = ("docs:read",), ("docs:write",), ("collections:admin",)
DEFAULT_MAX_SAMPLE = 10_000
_DOC_HEADERS = ("ETag",)  # the document's version, for If-Match

#: Every problem type the ml service answers: slug -> (status, meaning).
PROBLEM_TYPES: dict[str, tuple[int, str]] = {
    **COMMON_PROBLEM_TYPES,
    "invalid-cursor": (400, "the cursor does not decode to a position this listing made"),
    "collection-not-found": (404, "no collection of that name"),
    "document-not-found": (404, "no document of that id in the collection"),
    "document-exists": (409, "a document with that id already exists"),
    "version-mismatch": (412, "If-Match names another version; ETag carries the current one"),
    "payload-too-large": (
        413,
        "the body, a bulk body (bytes or documents) or a document's data is over its limit",
    ),
    "too-many-exports": (
        429,
        "the worker already streams as many exports as it may; retry after Retry-After seconds",
    ),
}


def operations(max_sample: int = DEFAULT_MAX_SAMPLE) -> tuple[Operation, ...]:
    """Every endpoint of the ml service (``max_sample`` bounds ``n`` of a sample)."""
    return (*health_operations(), *_v1(max_sample))


def _v1(max_sample: int) -> tuple[Operation, ...]:
    return (
        Operation(
            "GET",
            _C,
            "List collections",
            _R,
            response=schemas.CollectionPage,
            params=(_LIMIT, _CURSOR),
            errors=(400, 422, 503),
        ),
        Operation(
            "PUT",
            _C + "/{name}",
            "Create a collection (idempotent): 201 when created, 200 when it existed",
            _A,
            response=schemas.Collection,
            status=201,
            also=(200,),
            params=(_NAME,),
            errors=(422, 503),
        ),
        Operation(
            "GET",
            _C + "/{name}",
            "A collection with its count",
            _R,
            response=schemas.Collection,
            params=(_NAME,),
            errors=(404, 422, 503),
        ),
        Operation(
            "DELETE",
            _C + "/{name}",
            "Delete a collection and its documents",
            _A,
            status=204,
            params=(_NAME,),
            errors=(404, 422, 503),
        ),
        Operation(
            "POST",
            _D,
            "Create a document",
            _W,
            request=schemas.DocumentIn,
            response=schemas.Document,
            response_headers=(*_DOC_HEADERS, "Location"),
            status=201,
            params=(_NAME,),
            errors=(400, 404, 409, 413, 415, 422, 503),
        ),
        Operation(
            "GET",
            _D,
            "List documents (filter, range, fields, keyset)",
            _R,
            response=schemas.DocumentPage,
            params=(_NAME, _FILTER, *_RANGE, _FIELDS, _LIMIT, _CURSOR),
            errors=(400, 404, 422, 503),
        ),
        Operation(
            "GET",
            _D + "/{id}",
            "Get a document",
            _R,
            response=schemas.Document,
            response_headers=_DOC_HEADERS,
            params=(_NAME, _ID),
            errors=(404, 422, 503),
        ),
        Operation(
            "PUT",
            _D + "/{id}",
            "Replace a document's data",
            _W,
            request=schemas.DocumentReplace,
            response=schemas.Document,
            response_headers=_DOC_HEADERS,
            params=(_NAME, _ID, _IF_MATCH),
            errors=(400, 404, 412, 413, 415, 422, 503),
        ),
        Operation(
            "PATCH",
            _D + "/{id}",
            "JSON merge patch (RFC 7396) of a document's data",
            _W,
            request_schema=_MERGE_SCHEMA,
            request_content_type="application/merge-patch+json",
            response=schemas.Document,
            response_headers=_DOC_HEADERS,
            params=(_NAME, _ID, _IF_MATCH),
            errors=(400, 404, 412, 413, 415, 422, 503),
        ),
        Operation(
            "DELETE",
            _D + "/{id}",
            "Delete a document",
            _W,
            status=204,
            params=(_NAME, _ID, _IF_MATCH),
            errors=(404, 412, 422, 503),
        ),
        Operation(
            "POST",
            _D + ":bulk",
            "Bulk ingest (NDJSON or JSON array), all or nothing",
            _W,
            request_content=_BULK_CONTENT,
            response=schemas.BulkResult,
            status=201,
            params=(_NAME,),
            errors=(400, 404, 413, 415, 422, 503),
        ),
        Operation(
            "GET",
            _D + ":count",
            "Count matching documents (the listing's filters)",
            _R,
            response=schemas.Count,
            params=(_NAME, _FILTER, *_RANGE),
            errors=(404, 422, 503),
        ),
        Operation(
            "GET",
            _D + ":sample",
            "Reproducible random sample",
            _R,
            response=schemas.Sample,
            params=(
                _NAME,
                Param("n", "query", {"type": "integer", "minimum": 1, "maximum": max_sample}),
                Param(
                    "seed",
                    "query",
                    {"type": "string", "maxLength": 128},
                    description="printable characters; drawn and returned when absent",
                ),
                _FILTER,
                *_RANGE,
                _FIELDS,
                Param(
                    "cursor",
                    "query",
                    {"type": "string"},
                    description="next_cursor of a sample that filled its response early",
                ),
            ),
            errors=(400, 404, 422, 503),
        ),
        Operation(
            "GET",
            _C + "/{name}/export",
            "Export matching documents as NDJSON",
            _R,
            response_schema={"type": "string"},
            response_content_type="application/x-ndjson",
            params=(_NAME, _FILTER, *_RANGE, _FIELDS),
            errors=(404, 422, 429, 503),
        ),
    )


OPERATIONS = operations()

DESCRIPTION = """JSON documents on PostgreSQL JSONB for machine-learning jobs.

HEAD is answered wherever GET is (same status and headers, no body). Every endpoint
refuses query parameters it does not take (422). Errors are RFC 9457 problem details.
Pages and samples are bounded in bytes as well as in documents: one stops early once its
documents' data reaches the service's page budget, and its next_cursor continues it.
At most a few exports stream at once per worker; one more is answered 429 with
Retry-After."""


def openapi_document(version: str, max_sample: int = DEFAULT_MAX_SAMPLE) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the ml service."""
    document = build_openapi(
        title="Strata ml",
        version=version,
        operations=operations(max_sample),
        description=DESCRIPTION,
        problem_types=PROBLEM_TYPES,
    )
    # Every 429 says when to retry (common declares Retry-After for 503 only).
    for operation in document["paths"].values():
        for answer in operation.values():
            if "429" in answer["responses"]:
                answer["responses"]["429"]["headers"] = {
                    "Retry-After": {"schema": {"type": "string"}}
                }
    return document
