"""The ml endpoints described once for ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from services.common.openapi import Operation, Param, build_openapi
from services.ml import schemas
from services.ml.params import COLLECTION_NAME, DOCUMENT_ID

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
_FIELDS = Param("fields", "query", {"type": "string"}, description="comma-separated dotted paths")
_BULK_SCHEMA: dict[str, Any] = {"type": "array", "items": {"type": "object"}}
_MERGE_SCHEMA: dict[str, Any] = {"type": "object"}
_C = "/v1/collections"
_D = _C + "/{name}/documents"
_R, _W, _A = ("docs:read",), ("docs:write",), ("collections:admin",)

OPERATIONS = (
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
        "Create a collection (idempotent)",
        _A,
        response=schemas.Collection,
        status=201,
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
        request_schema=_BULK_SCHEMA,
        response=schemas.BulkResult,
        status=201,
        params=(_NAME,),
        errors=(400, 404, 413, 415, 422, 503),
    ),
    Operation(
        "GET",
        _D + ":count",
        "Count matching documents",
        _R,
        response=schemas.Count,
        params=(_NAME, _FILTER),
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
            Param("n", "query", {"type": "integer", "minimum": 1}),
            Param("seed", "query", {"type": "string", "maxLength": 128}),
            _FILTER,
        ),
        errors=(404, 422, 503),
    ),
    Operation(
        "GET",
        _C + "/{name}/export",
        "Export matching documents as NDJSON",
        _R,
        response_schema={"type": "string"},
        response_content_type="application/x-ndjson",
        params=(_NAME, _FILTER, *_RANGE, _FIELDS),
        errors=(404, 422, 503),
    ),
)


def openapi_document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the ml service."""
    return build_openapi(
        title="Strata ml",
        version=version,
        operations=OPERATIONS,
        description="JSON documents on PostgreSQL JSONB for machine-learning jobs.",
    )
