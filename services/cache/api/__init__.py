"""HTTP endpoints of the cache service (one module per resource under ``/v1``), and what
they share."""

from __future__ import annotations

from typing import Final

from sanic import HTTPResponse, Request

from services.cache.settings import CacheSettings
from services.cache.store import CacheStore
from services.common.problems import Problem

READ: Final = "cache:read"
WRITE: Final = "cache:write"
#: 503 store-unavailable may come from every data endpoint; 422 from every bad key or body.
STORE: Final = (422, 503)
_JSON: Final = "application/json"


def store_of(request: Request) -> CacheStore:
    """This worker's store (created in ``before_server_start``)."""
    store: CacheStore = request.app.ctx.store
    return store


def settings_of(request: Request) -> CacheSettings:
    """The service settings."""
    settings: CacheSettings = request.app.ctx.settings
    return settings


def json_bytes(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> HTTPResponse:
    """A response from already-encoded JSON (values are spliced in as stored, not re-encoded)."""
    return HTTPResponse(body, status=status, headers=headers, content_type=_JSON)


def key_not_found() -> Problem:
    """404 ``key-not-found``."""
    return Problem(404, "key-not-found", "no value is stored under this key")
