"""HTTP blueprints of the cache service, grouped under ``/v1``, and what they share."""

from __future__ import annotations

from typing import Final

from sanic import HTTPResponse, Request

from services.cache.settings import CacheSettings
from services.cache.store import CacheStore
from services.common.problems import Problem

READ: Final = "cache:read"
WRITE: Final = "cache:write"
_JSON: Final = "application/json"


def store_of(request: Request) -> CacheStore:
    """This worker's store (created in ``before_server_start``)."""
    store: CacheStore = request.app.ctx.store
    return store


def settings_of(request: Request) -> CacheSettings:
    """The service settings."""
    settings: CacheSettings = request.app.ctx.settings
    return settings


def content_type(request: Request) -> str | None:
    """The request's Content-Type header, None when absent.

    ``request.content_type`` defaults to application/octet-stream, which would turn a
    body sent without the header into a 415; a missing header is read as JSON instead.
    """
    value: str | None = request.headers.get("content-type")
    return value


def json_bytes(body: bytes, status: int = 200) -> HTTPResponse:
    """A response from already-encoded JSON (values are spliced in as stored, not re-encoded)."""
    return HTTPResponse(body, status=status, content_type=_JSON)


def key_not_found() -> Problem:
    """404 ``key-not-found``."""
    return Problem(404, "key-not-found", "no value is stored under this key")
