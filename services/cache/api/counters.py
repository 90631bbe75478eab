"""``/v1/counters``: atomic increments with an optional expiry window, and reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sanic import Blueprint, HTTPResponse, Request

from services.cache.api import READ, WRITE, content_type, key_not_found, store_of
from services.cache.schemas import IncrRequest, parse_body, path_key
from services.common.problems import method_not_allowed
from services.common.sanic_support import allowed_methods, json, principal, query, read_route

bp = Blueprint("counters", url_prefix="/v1")
_INCR = ":incr"


def _is_increment(params: Mapping[str, Any]) -> bool:
    """POST answers only ``/v1/counters/{key}:incr`` (the 405 ``Allow`` header uses this)."""
    return str(params.get("key", "")).endswith(_INCR)


@read_route(bp, "/counters/<key:path>", name="get_counter")
async def get_counter(request: Request, key: str) -> HTTPResponse:
    """A counter's value, or 404 ``key-not-found``."""
    principal(request, READ)
    query(request, ())
    key = path_key(key)
    value = await store_of(request).counter(key)
    if value is None:
        raise key_not_found()
    return json({"key": key, "value": value})


# One path route for both methods: a regex route for "{key}:incr" would also capture
# GET /v1/counters/x:incr (a legal key) and answer it 405, and could not take keys with "/".
@bp.post("/counters/<key:path>", name="incr_counter", ctx_applies=_is_increment)
async def incr_counter(request: Request, key: str) -> HTTPResponse:
    """Add ``by`` (default 1) atomically; ``ttl`` sets an expiry if the counter has none."""
    if not key.endswith(_INCR):
        raise method_not_allowed(allowed_methods(request))
    principal(request, WRITE)
    query(request, ())
    key = path_key(key[: -len(_INCR)])
    body = (
        parse_body(IncrRequest, request.body, content_type(request))
        if request.body
        else IncrRequest()
    )
    value = await store_of(request).incr(key, body.by, body.ttl)
    return json({"key": key, "value": value})
