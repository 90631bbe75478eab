"""``/v1/kv``: get, put (optionally set-if-absent), delete, and the mget/mset batches."""

from __future__ import annotations

import orjson
from sanic import Blueprint, HTTPResponse, Request

from services.cache.api import (
    READ,
    WRITE,
    content_type,
    json_bytes,
    key_not_found,
    settings_of,
    store_of,
)
from services.cache.schemas import (
    MgetRequest,
    MsetRequest,
    PutValue,
    check_batch,
    check_key,
    encode_value,
    parse_body,
    path_key,
)
from services.common.problems import Problem
from services.common.sanic_support import json, principal, query, read_route

bp = Blueprint("kv", url_prefix="/v1")


def _entry(key: str, value: bytes, ttl: int | None) -> bytes:
    # The stored JSON text is spliced in as is: no decode and re-encode per read.
    ttl_text = b"null" if ttl is None else str(ttl).encode()
    return b'{"key":' + orjson.dumps(key) + b',"value":' + value + b',"ttl":' + ttl_text + b"}"


@read_route(bp, "/kv/<key:path>", name="get_value")
async def get_value(request: Request, key: str) -> HTTPResponse:
    """The value and its remaining TTL, or 404 ``key-not-found``."""
    principal(request, READ)
    query(request, ())
    key = path_key(key)
    found = await store_of(request).get(key)
    if found is None:
        raise key_not_found()
    return json_bytes(_entry(key, *found))


@bp.put("/kv/<key:path>", name="put_value")
async def put_value(request: Request, key: str) -> HTTPResponse:
    """Store a value; with ``If-None-Match: *`` only when absent (else 412 ``key-exists``)."""
    principal(request, WRITE)
    query(request, ())
    key = path_key(key)
    body = parse_body(PutValue, request.body, content_type(request))
    encoded = encode_value(body.value, settings_of(request).max_value_bytes, ["body", "value"])
    only_if_absent = (request.headers.get("if-none-match") or "").strip() == "*"
    stored = await store_of(request).put(key, encoded, body.ttl, only_if_absent=only_if_absent)
    if not stored:
        raise Problem(412, "key-exists", "a value is already stored under this key")
    return json_bytes(_entry(key, encoded, body.ttl))


@bp.delete("/kv/<key:path>", name="delete_value")
async def delete_value(request: Request, key: str) -> HTTPResponse:
    """Remove a value: 204, or 404 ``key-not-found``."""
    principal(request, WRITE)
    query(request, ())
    key = path_key(key)
    if not await store_of(request).delete(key):
        raise key_not_found()
    return HTTPResponse(status=204)


# A static "/kv:mget" segment would never match: Sanic's router percent-encodes the ":"
# of static segments but not of request paths. A one-alternative regex segment does.
@bp.post("/<batch:kv:mget>", name="mget")
async def mget(request: Request, batch: str) -> HTTPResponse:
    """Values of up to ``max_batch`` keys, null where absent."""
    principal(request, READ)
    query(request, ())
    body = parse_body(MgetRequest, request.body, content_type(request))
    check_batch(len(body.keys), settings_of(request).max_batch, ["body", "keys"])
    keys = list(dict.fromkeys(check_key(k, ["body", "keys", i]) for i, k in enumerate(body.keys)))
    values = await store_of(request).mget(keys)
    pairs = b",".join(
        orjson.dumps(k) + b":" + (b"null" if v is None else v)
        for k, v in zip(keys, values, strict=True)
    )
    return json_bytes(b'{"values":{' + pairs + b"}}")


@bp.post("/<batch:kv:mset>", name="mset")
async def mset(request: Request, batch: str) -> HTTPResponse:
    """Store up to ``max_batch`` values atomically, all with the same TTL (or none)."""
    principal(request, WRITE)
    query(request, ())
    body = parse_body(MsetRequest, request.body, content_type(request))
    settings = settings_of(request)
    check_batch(len(body.items), settings.max_batch, ["body", "items"])
    items = [
        (
            check_key(k, ["body", "items", k]),
            encode_value(v, settings.max_value_bytes, ["body", "items", k]),
        )
        for k, v in body.items.items()
    ]
    await store_of(request).mset(items, body.ttl)
    return json({"count": len(items), "ttl": body.ttl})
