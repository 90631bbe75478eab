"""Export (NDJSON or Parquet; resumable; sharded over a held snapshot) and its snapshots."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sanic import HTTPResponse, Request

from services.common.compression import accepts_gzip, gzip_headers, vary_with
from services.common.endpoint import Routes
from services.common.operation import Param
from services.common.problems import Problem
from services.common.sanic_routes import query
from services.common.sanic_support import json
from services.ml import params, schemas, snapshots, streams
from services.ml.api.documents import document_query
from services.ml.api.shared import (
    COLLECTIONS,
    FIELDS,
    FILTER,
    NAME,
    OP_RULE,
    RANGE,
    READ,
    collection,
)
from services.ml.context import ctx
from services.ml.exports import TOO_MANY_EXPORTS, ClientStalledError
from services.ml.parquet import PARQUET
from services.ml.store.export import Budget
from services.ml.store.snapshot import held

routes = Routes()
logger = logging.getLogger("strata.ml.export")
NDJSON = "application/x-ndjson"
_EXPORT = COLLECTIONS + "/{name}/export"
FORMAT = Param(
    "format", "query", {"type": "string", "enum": list(params.EXPORT_FORMATS)},
    description="ndjson (default) or parquet",
)  # fmt: skip
AFTER = Param(
    "after", "query", {"type": "string", "pattern": params.DOCUMENT_ID.pattern},
    description="resume after this document id (the last one received)",
)  # fmt: skip
SNAPSHOT = Param(
    "snapshot", "query", {"type": "string"},
    description="a token from POST .../export:snapshot: read that snapshot",
)  # fmt: skip
SHARD = Param(
    "shard", "query", {"type": "integer", "minimum": 0, "maximum": params.MAX_SHARDS - 1},
    description="this shard (0-based) of `shards`; needs `snapshot`",
)  # fmt: skip
SHARDS = Param(
    "shards", "query", {"type": "integer", "minimum": 1, "maximum": params.MAX_SHARDS},
    description="how many disjoint shards the export is split into",
)  # fmt: skip
_HEADERS = {
    "Content-Encoding": {"description": "gzip when Accept-Encoding accepts it (NDJSON only)",
                         "schema": {"type": "string"}},
    "Vary": {"description": "Accept-Encoding", "schema": {"type": "string"}},
    "Content-Disposition": {"description": "Parquet: attachment; filename=<name>.parquet",
                            "schema": {"type": "string"}},
}  # fmt: skip


@routes("GET", _EXPORT, "Export matching documents as NDJSON or Parquet", scopes=READ,
        response_content={NDJSON: {"type": "string"},
                          PARQUET: {"type": "string", "format": "binary"}},
        headers=_HEADERS,
        params=(NAME, FILTER, *RANGE, FIELDS, FORMAT, AFTER, SNAPSHOT, SHARD, SHARDS),
        errors=(400, 404, 409, 410, 422, 429, 503))  # fmt: skip
async def export_documents(request: Request, name: str) -> None:
    """Stream every matching document, in ``(created_at, id)`` order, from one snapshot.

    It takes the listing's filters and ``fields``; a ``cursor`` (the export is the whole
    result) is refused like any parameter it does not take: 422. ``after`` resumes after
    a document; ``snapshot`` reads a held snapshot, ``shard``/``shards`` one disjoint
    part of it. At most ``EXPORT_MAX_CONCURRENT`` exports stream at once per worker (429
    beyond); a client that leaves the stream unread for ``EXPORT_SEND_TIMEOUT`` seconds
    is cut off.
    """
    name = collection(name)
    app = ctx(request)
    settings = app.settings
    args = request.args
    q = document_query(request)
    fmt = params.export_format(args.get("format"))
    raw_token = args.get("snapshot") or None
    token = snapshots.decode(raw_token, name) if raw_token else None
    q = dataclasses.replace(
        q, shard=params.shard(args.get("shard"), args.get("shards"), bool(token))
    )
    after = args.get("after")
    deadline = settings.export_send_timeout
    export = streams.ExportRequest(
        name,
        q,
        Budget(settings.export_batch_size, settings.export_batch_bytes, settings.export_first_rows),
        # PostgreSQL ends the session itself if the worker goes quiet for much longer.
        int((deadline + 15) * 1000),
        settings.export_parquet_row_group_rows,
        snapshot=token.imported(raw_token) if token and raw_token else None,
        resume=params.document_id(after, ("query", "after")) if after else None,
    )
    gzip = fmt == "ndjson" and accepts_gzip(request.headers.get("accept-encoding"))
    try:
        with app.exports.take():
            await _stream(request, export, fmt, gzip)
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


def _source(
    export: streams.ExportRequest, fmt: str, gzip: bool
) -> Callable[[asyncpg.Connection], AbstractAsyncContextManager[streams.Chunks]]:
    if fmt == "parquet":
        return lambda pg: streams.parquet(pg, export)
    return lambda pg: streams.ndjson(pg, export, gzip=gzip)


async def _stream(request: Request, export: streams.ExportRequest, fmt: str, gzip: bool) -> None:
    """Send the export; raise :class:`ClientStalledError` when a send outlives its deadline."""
    app = ctx(request)
    deadline = app.settings.export_send_timeout

    async def send(response: HTTPResponse, data: bytes | None = None) -> None:
        try:
            if data is None:
                await asyncio.wait_for(response.eof(), deadline)  # type: ignore[no-untyped-call]
            else:
                await asyncio.wait_for(response.send(data), deadline)
        except TimeoutError:
            raise ClientStalledError from None

    if fmt == "parquet":
        content_type = PARQUET
        headers = {"Content-Disposition": f'attachment; filename="{export.name}.parquet"'}
    else:
        content_type = NDJSON
        # The rule of every other JSON answer: Vary also when this client gets identity;
        # the export has no ETag, so gzip_headers only names the encoding.
        headers = {"Vary": vary_with(None)} | (gzip_headers(None) if gzip else {})
    sent = 0
    # A held snapshot lives on the primary: only the primary can import it.
    async with (
        app.store.raw(read=export.snapshot is None) as pg,
        _source(export, fmt, gzip)(pg) as chunks,
    ):
        response: HTTPResponse = await request.respond(content_type=content_type, headers=headers)
        if request.method == "HEAD":
            # The head only, once the export opened (a missing collection is still 404):
            # no body is sent, so none is computed (Sanic counts a HEAD answered once its
            # head is out, and a body still being sent then breaks the connection).
            await send(response)
            return
        try:
            async for chunk, documents in chunks:
                if chunk:
                    await send(response, chunk)
                sent += documents
        finally:
            app.ml_metrics.count_exported(sent)
        await send(response)


@routes("POST", COLLECTIONS + "/{name}/export:snapshot",
        "Hold a snapshot for sharded or resumed exports", scopes=READ,
        rule=OP_RULE.format(op="export:snapshot"), response=schemas.ExportSnapshot, status=201,
        params=(NAME,), errors=(404, 422, 429, 503))  # fmt: skip
async def take_snapshot(request: Request, name: str, op: str) -> HTTPResponse:
    """Export one snapshot of the database and hold it for ``EXPORT_SNAPSHOT_TTL`` seconds.

    Its token reads that snapshot from any worker: ``export?snapshot=<token>``, with
    ``shard=i&shards=n`` for one of n disjoint parts. At most ``EXPORT_SNAPSHOTS_MAX`` per
    worker (429 beyond, with ``Retry-After``).
    """
    query(request)
    name = collection(name)
    app = ctx(request)
    idle_ms = (app.settings.export_snapshot_ttl + 30) * 1000
    issued = await app.snapshots.take(lambda n: held(app.store, n, idle_ms), name)
    expires = datetime.fromtimestamp(issued.expires, UTC)
    body = {"snapshot": issued.token, "collection": name, "expires_at": expires.isoformat()}
    return json(body, status=201)
