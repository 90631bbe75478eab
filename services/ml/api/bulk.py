"""Bulk ingest (``documents:bulk``)."""

from __future__ import annotations

from typing import Any

from sanic import HTTPResponse, Request

from services.common import problems
from services.common.endpoint import Routes
from services.common.sanic_routes import query
from services.common.sanic_support import json
from services.ml import schemas
from services.ml.api.shared import (
    DOCUMENTS,
    NAME,
    OP_RULE,
    WRITE,
    collection,
)
from services.ml.context import ctx
from services.ml.ingest import parse_bulk
from services.ml.store import bulk

routes = Routes()
NDJSON = "application/x-ndjson"
_BULK_CONTENT: dict[str, dict[str, Any]] = {
    NDJSON: {"type": "string", "description": "one JSON object (a document's data) per line"},
    "application/json": {"type": "array", "items": {"type": "object"}},
}


async def read_body(request: Request, limit: int) -> bytes:
    """Read a streamed body up to ``limit`` bytes (413 beyond), not the global body limit."""
    stream: Any = request.stream  # the HTTP/1 stream; its read() is untyped on the base
    declared = request.headers.get("content-length")
    buf = bytearray()
    too_large = bool(declared and declared.isdigit() and int(declared) > limit)
    while not too_large and (chunk := await stream.read()) is not None:
        buf += chunk
        too_large = len(buf) > limit
    if too_large:
        # The rest of the body stays unread: say the connection closes, so a client
        # does not reuse it for its next request.
        stream.keep_alive = False
        raise problems.body_too_large(limit)
    return bytes(buf)


@routes("POST", DOCUMENTS + ":bulk", "Bulk ingest (NDJSON or JSON array), all or nothing",
        scopes=WRITE, rule=OP_RULE.format(op="documents:bulk"), options={"stream": True},
        request_content=_BULK_CONTENT, response=schemas.BulkResult, status=201,
        params=(NAME,), errors=(400, 404, 413, 415, 422, 503))  # fmt: skip
async def bulk_ingest(request: Request, name: str, op: str) -> HTTPResponse:
    """Validate every line, then COPY all documents in one transaction (all or nothing)."""
    query(request)
    name = collection(name)
    app = ctx(request)
    settings = app.settings
    body = await read_body(request, settings.bulk_max_bytes)
    texts = parse_bulk(
        body,
        request.headers.get("content-type"),
        max_documents=settings.bulk_max_documents,
        max_document_bytes=settings.max_document_bytes,
    )
    del body  # the validated texts are all we keep
    async with app.store.raw() as pg:
        ids = await bulk.ingest(pg, name, texts)
    app.ml_metrics.count_ingested(len(ids))
    return json({"inserted": len(ids), "ids": ids}, status=201)
