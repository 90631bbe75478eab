"""The ml service's OpenAPI document, built from the endpoint declarations."""

from __future__ import annotations

from typing import Any

from services.common.openapi import build_openapi
from services.common.openapi_health import health_operations
from services.common.problems import COMMON_PROBLEM_TYPES
from services.ml.api import ENDPOINTS
from services.ml.api.documents import SAMPLE_SIZE
from services.ml.api.shared import DEFAULT_MAX_SAMPLE

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
        operations=[*health_operations(), *(e.operation for e in ENDPOINTS)],
        description=DESCRIPTION,
        problem_types=PROBLEM_TYPES,
    )
    # The sample's n is bounded by this service's max_sample.
    for parameter in document["paths"]["/v1/collections/{name}/documents:sample"]["get"][
        "parameters"
    ]:
        if parameter["name"] == SAMPLE_SIZE.name:
            parameter["schema"] = {**parameter["schema"], "maximum": max_sample}
    # Every 429 says when to retry (common declares Retry-After for 503 only).
    for operation in document["paths"].values():
        for answer in operation.values():
            if "429" in answer["responses"]:
                answer["responses"]["429"]["headers"] = {
                    "Retry-After": {"schema": {"type": "string"}}
                }
    return document
