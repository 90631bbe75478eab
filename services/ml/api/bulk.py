"""Bulk ingest (``documents:bulk``) and NDJSON export (``export``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sanic import HTTPResponse, Request

from services.common import problems
from services.common.endpoint import Routes
from services.common.problems import Problem
from services.common.sanic_routes import query
from services.common.sanic_support import json
from services.ml import schemas
from services.ml.api.documents import document_query
from services.ml.api.shared import (
    COLLECTIONS,
    DOCUMENTS,
    FIELDS,
    FILTER,
    NAME,
    OP_RULE,
    RANGE,
    READ,
    WRITE,
    collection,
)
from services.ml.context import ctx
from services.ml.exports import TOO_MANY_EXPORTS, ClientStalledError
from services.ml.ingest import parse_bulk
from services.ml.params import DocumentQuery
from services.ml.store import bulk, export
from services.ml.store.export import Budget

routes = Routes()
logger = logging.getLogger("strata.ml.export")
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


@routes("GET", COLLECTIONS + "/{name}/export", "Export matching documents as NDJSON",
        scopes=READ, response_schema={"type": "string"}, response_content_type=NDJSON,
        params=(NAME, FILTER, *RANGE, FIELDS), errors=(404, 422, 429, 503))  # fmt: skip
async def export_documents(request: Request, name: str) -> None:
    """Stream every matching document as NDJSON from one snapshot, batch by batch.

    It takes the listing's filters and ``fields``; a ``cursor`` (the export is the whole
    result) is refused like any parameter it does not take: 422. At most
    ``EXPORT_MAX_CONCURRENT`` exports stream at once per worker (429 beyond); a client
    that leaves the stream unread for ``EXPORT_SEND_TIMEOUT`` seconds is cut off.
    """
    name = collection(name)
    app = ctx(request)
    q = document_query(request)
    try:
        with app.exports.take():
            await _stream(request, name, q)
    except ClientStalledError:
        # The snapshot and the connection are already released (the contexts above have
        # exited); drop the socket without waiting for the client to read what is queued.
        app.ml_metrics.export_stalled()
        logger.warning("export aborted: the client stopped reading", extra={"collection": name})
        transport: Any = request.transport  # uvloop's TCP transport: a WriteTransport
        transport.abort()
    except Problem as problem:
        if problem.slug == TOO_MANY_EXPORTS:
            app.ml_metrics.export_refused()
        raise
    # Nothing to return: the streamed response is sent (Sanic logs an error otherwise).


async def _stream(request: Request, name: str, q: DocumentQuery) -> None:
    """Send the export; raise :class:`ClientStalledError` when a send outlives its deadline."""
    app = ctx(request)
    settings = app.settings
    budget = Budget(
        settings.export_batch_size, settings.export_batch_bytes, settings.export_first_rows
    )
    deadline = settings.export_send_timeout
    # PostgreSQL ends the session itself if the worker goes quiet for much longer.
    idle_ms = int((deadline + 15) * 1000)

    async def send(response: HTTPResponse, data: bytes | None = None) -> None:
        try:
            if data is None:
                await asyncio.wait_for(response.eof(), deadline)  # type: ignore[no-untyped-call]
            else:
                await asyncio.wait_for(response.send(data), deadline)
        except TimeoutError:
            raise ClientStalledError from None

    sent = 0
    async with (
        app.store.raw(read=True) as pg,
        export.export(pg, name, q, budget, idle_ms) as chunks,
    ):
        response: HTTPResponse = await request.respond(content_type=NDJSON)
        try:
            async for chunk in chunks:
                await send(response, chunk)
                sent += chunk.count(b"\n")
        finally:
            app.ml_metrics.count_exported(sent)
        await send(response)
