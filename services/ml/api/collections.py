"""``/v1/collections`` and ``/v1/collections/{name}``."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from services.common.cursor import decode_cursor, encode_cursor, parse_limit
from services.common.problems import Problem
from services.common.sanic_support import json, query, read_route
from services.ml.api.shared import ADMIN, READ, authorize, collection
from services.ml.context import ctx
from services.ml.params import COLLECTION_NAME
from services.ml.store import collections as store

bp = Blueprint("collections", url_prefix="/collections")


@bp.put("/<name:str>", name="put_collection")
async def put_collection(request: Request, name: str) -> HTTPResponse:
    """Create a collection; 201 when new, 200 when it already existed."""
    authorize(request, ADMIN)
    query(request, ())
    name = collection(name)
    async with ctx(request).store.begin() as conn:
        found, created = await store.ensure(conn, name)
    return json(found, status=201 if created else 200)


@read_route(bp, "", name="list_collections")
async def list_collections(request: Request) -> HTTPResponse:
    """Collections by name, keyset-paginated."""
    authorize(request, READ)
    query(request, ("limit", "cursor"))
    limit = parse_limit(request.args.get("limit"))
    raw_cursor = request.args.get("cursor")
    after = decode_cursor(raw_cursor, ("n",))["n"] if raw_cursor else None
    if after is not None and not (isinstance(after, str) and COLLECTION_NAME.fullmatch(after)):
        raise Problem(400, "invalid-cursor", "cursor is not valid")
    async with ctx(request).store.connect() as conn:
        rows = await store.page(conn, after, limit)
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = encode_cursor({"n": rows[-1]["name"]}) if more else None
    return json({"items": rows, "next_cursor": cursor})


@read_route(bp, "/<name:str>", name="get_collection")
async def get_collection(request: Request, name: str) -> HTTPResponse:
    """One collection with its document count."""
    authorize(request, READ)
    query(request, ())
    name = collection(name)
    async with ctx(request).store.connect() as conn:
        return json(await store.get(conn, name))


@bp.delete("/<name:str>", name="delete_collection")
async def delete_collection(request: Request, name: str) -> HTTPResponse:
    """Delete a collection and all its documents."""
    authorize(request, ADMIN)
    query(request, ())
    name = collection(name)
    async with ctx(request).store.begin() as conn:
        await store.remove(conn, name)
    return HTTPResponse(status=204)
