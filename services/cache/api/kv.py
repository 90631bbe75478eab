"""``/v1/kv``: get, put (optionally set-if-absent), delete, and the mget/mset batches."""

from __future__ import annotations

import hashlib

import orjson
from sanic import HTTPResponse, Request

from services.cache.api import READ, STORE, WRITE, json_bytes, key_not_found, settings_of, store_of
from services.cache.schemas import (
    KEY,
    Entry,
    MgetRequest,
    MgetResponse,
    MsetRequest,
    MsetResponse,
    PutValue,
    check_batch,
    check_key,
    encode_value,
    path_key,
)
from services.common.endpoint import Body, Routes
from services.common.operation import Param
from services.common.problems import Problem
from services.common.sanic_routes import query
from services.common.sanic_support import json

routes = Routes()
ETAG = {
    "ETag": {
        "schema": {"type": "string"},
        "description": 'weak, of the stored value (W/"…"): If-None-Match on GET answers 304',
    }
}
_IF_NONE_MATCH = Param(
    "If-None-Match",
    "header",
    {"type": "string", "enum": ["*"]},
    description="`*` stores only when the key is absent (412 key-exists otherwise)",
)


def _etag(value: bytes) -> dict[str, str]:
    # Weak: it names the value, not the answer, whose ttl counts down; a 304 says the
    # value is unchanged (docs/api.md, "Conditional requests").
    return {"ETag": 'W/"' + hashlib.blake2b(value, digest_size=12).hexdigest() + '"'}


def _entry(key: str, value: bytes, ttl: int | None) -> bytes:
    # The stored JSON text is spliced in as is: no decode and re-encode per read.
    ttl_text = b"null" if ttl is None else str(ttl).encode()
    return b'{"key":' + orjson.dumps(key) + b',"value":' + value + b',"ttl":' + ttl_text + b"}"


@routes("GET", "/v1/kv/{key}", "Read a value and its remaining TTL", scopes=(READ,),
        response=Entry, headers=ETAG, errors=(404, *STORE), params=(KEY,))  # fmt: skip
async def get_value(request: Request, key: str) -> HTTPResponse:
    """The value and its remaining TTL, or 404 ``key-not-found``."""
    query(request)
    key = path_key(key)
    found = await store_of(request).get(key)
    if found is None:
        raise key_not_found()
    value, ttl = found
    return json_bytes(_entry(key, value, ttl), headers=_etag(value))


@routes("PUT", "/v1/kv/{key}", "Store a value (optionally only if absent)", scopes=(WRITE,),
        response=Entry, headers=ETAG, errors=(400, 412, 413, 415, *STORE),
        params=(KEY, _IF_NONE_MATCH))  # fmt: skip
async def put_value(request: Request, key: str, body: Body[PutValue]) -> HTTPResponse:
    """Store a value; with ``If-None-Match: *`` only when absent (else 412 ``key-exists``)."""
    query(request)
    key = path_key(key)
    fields = body()
    encoded = encode_value(fields.value, settings_of(request).max_value_bytes, ["body", "value"])
    only_if_absent = (request.headers.get("if-none-match") or "").strip() == "*"
    stored = await store_of(request).put(key, encoded, fields.ttl, only_if_absent=only_if_absent)
    if not stored:
        raise Problem(412, "key-exists", "a value is already stored under this key")
    return json_bytes(_entry(key, encoded, fields.ttl), headers=_etag(encoded))


@routes("DELETE", "/v1/kv/{key}", "Delete a value", scopes=(WRITE,), status=204,
        errors=(404, *STORE), params=(KEY,))  # fmt: skip
async def delete_value(request: Request, key: str) -> HTTPResponse:
    """Remove a value: 204, or 404 ``key-not-found``."""
    query(request)
    key = path_key(key)
    if not await store_of(request).delete(key):
        raise key_not_found()
    return HTTPResponse(status=204)


# A static "/kv:mget" segment would never match: Sanic's router percent-encodes the ":"
# of static segments but not of request paths. A one-alternative regex segment does.
@routes("POST", "/v1/kv:mget", "Read many values", scopes=(READ,), rule="/v1/<batch:kv:mget>",
        response=MgetResponse, errors=(400, 415, *STORE))  # fmt: skip
async def mget(request: Request, batch: str, body: Body[MgetRequest]) -> HTTPResponse:
    """Values of up to ``max_batch`` keys, null where absent."""
    query(request)
    asked = body().keys
    check_batch(len(asked), settings_of(request).max_batch, ["body", "keys"])
    keys = list(dict.fromkeys(check_key(k, ["body", "keys", i]) for i, k in enumerate(asked)))
    values = await store_of(request).mget(keys)
    pairs = b",".join(
        orjson.dumps(k) + b":" + (b"null" if v is None else v)
        for k, v in zip(keys, values, strict=True)
    )
    return json_bytes(b'{"values":{' + pairs + b"}}")


@routes("POST", "/v1/kv:mset", "Store many values atomically", scopes=(WRITE,),
        rule="/v1/<batch:kv:mset>", response=MsetResponse,
        errors=(400, 413, 415, *STORE))  # fmt: skip
async def mset(request: Request, batch: str, body: Body[MsetRequest]) -> HTTPResponse:
    """Store up to ``max_batch`` values atomically, all with the same TTL (or none)."""
    query(request)
    fields = body()
    settings = settings_of(request)
    check_batch(len(fields.items), settings.max_batch, ["body", "items"])
    items = [
        (
            check_key(k, ["body", "items", k]),
            encode_value(v, settings.max_value_bytes, ["body", "items", k]),
        )
        for k, v in fields.items.items()
    ]
    await store_of(request).mset(items, fields.ttl)
    return json({"count": len(items), "ttl": fields.ttl})
