"""``/v1/counters``: atomic increments with an optional expiry window, and reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sanic import HTTPResponse, Request

from services.cache.api import READ, STORE, WRITE, key_not_found, store_of
from services.cache.schemas import KEY, CounterValue, IncrRequest, path_key
from services.common.endpoint import Body, Routes
from services.common.sanic_routes import query
from services.common.sanic_support import json

routes = Routes()
_INCR = ":incr"


def _is_increment(params: Mapping[str, Any]) -> bool:
    """POST answers only ``/v1/counters/{key}:incr`` (the 405 ``Allow`` header uses this)."""
    return str(params.get("key", "")).endswith(_INCR)


@routes("GET", "/v1/counters/{key}", "Read a counter", scopes=(READ,),
        response=CounterValue, errors=(404, *STORE), params=(KEY,))  # fmt: skip
async def get_counter(request: Request, key: str) -> HTTPResponse:
    """A counter's value, or 404 ``key-not-found``."""
    query(request)
    key = path_key(key)
    value = await store_of(request).counter(key)
    if value is None:
        raise key_not_found()
    return json({"key": key, "value": value})


# One path route for both methods: a regex route for "{key}:incr" would also capture
# GET /v1/counters/x:incr (a legal key) and answer it 405, and could not take keys with "/".
@routes("POST", "/v1/counters/{key}:incr", "Increment a counter atomically", scopes=(WRITE,),
        rule="/v1/counters/<key:path>", applies=_is_increment, response=CounterValue,
        errors=(400, 409, 415, *STORE), params=(KEY,))  # fmt: skip
async def incr_counter(request: Request, key: str, body: Body[IncrRequest]) -> HTTPResponse:
    """Add ``by`` (default 1) atomically; ``ttl`` sets an expiry if the counter has none."""
    query(request)
    key = path_key(key[: -len(_INCR)])
    fields = body() if request.body else IncrRequest()
    value = await store_of(request).incr(key, fields.by, fields.ttl)
    return json({"key": key, "value": value})
