"""``/v1/collections`` and ``/v1/collections/{name}``."""

from __future__ import annotations

from sanic import HTTPResponse, Request

from services.common.cursor import decode_cursor, invalid_cursor, page, parse_limit
from services.common.endpoint import Routes
from services.common.sanic_routes import query
from services.common.sanic_support import json
from services.ml import schemas
from services.ml.api.shared import ADMIN, COLLECTIONS, CURSOR, LIMIT, NAME, READ, collection
from services.ml.context import ctx
from services.ml.params import COLLECTION_NAME
from services.ml.store import collections as store

routes = Routes()
_ONE = COLLECTIONS + "/{name}"


@routes("PUT", _ONE, "Create a collection (idempotent): 201 when created, 200 when it existed",
        scopes=ADMIN, response=schemas.Collection, status=201, also=(200,), params=(NAME,),
        errors=(422, 503))  # fmt: skip
async def put_collection(request: Request, name: str) -> HTTPResponse:
    """Create a collection; 201 when new, 200 when it already existed."""
    query(request)
    name = collection(name)
    async with ctx(request).store.begin() as conn:
        found, created = await store.ensure(conn, name)
    return json(found, status=201 if created else 200)


@routes("GET", COLLECTIONS, "List collections", scopes=READ, response=schemas.CollectionPage,
        params=(LIMIT, CURSOR), errors=(400, 422, 503))  # fmt: skip
async def list_collections(request: Request) -> HTTPResponse:
    """Collections by name, keyset-paginated."""
    query(request)
    limit = parse_limit(request.args.get("limit"))
    raw_cursor = request.args.get("cursor")
    after = decode_cursor(raw_cursor, ("n",))["n"] if raw_cursor else None
    if after is not None and not (isinstance(after, str) and COLLECTION_NAME.fullmatch(after)):
        raise invalid_cursor()
    async with ctx(request).store.connect() as conn:
        rows = await store.page(conn, after, limit)
    items, cursor = page(rows, limit, lambda row: {"n": row["name"]})
    return json({"items": items, "next_cursor": cursor})


@routes("GET", _ONE, "A collection with its count", scopes=READ, response=schemas.Collection,
        params=(NAME,), errors=(404, 422, 503))  # fmt: skip
async def get_collection(request: Request, name: str) -> HTTPResponse:
    """One collection with its document count."""
    query(request)
    name = collection(name)
    async with ctx(request).store.connect() as conn:
        return json(await store.get(conn, name))


@routes("DELETE", _ONE, "Delete a collection and its documents", scopes=ADMIN, status=204,
        params=(NAME,), errors=(404, 422, 503))  # fmt: skip
async def delete_collection(request: Request, name: str) -> HTTPResponse:
    """Delete a collection and all its documents."""
    query(request)
    name = collection(name)
    async with ctx(request).store.begin() as conn:
        await store.remove(conn, name)
    return HTTPResponse(status=204)
