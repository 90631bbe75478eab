"""The cache service's app factory: shared wiring, the Redis store per worker, endpoints."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter
from sanic import Sanic
from sanic.config import Config

from services.cache.api import errors
from services.cache.settings import CacheSettings
from services.cache.spec import ENDPOINTS, INFO
from services.cache.store import CacheStore
from services.common import tracing
from services.common.cache import CachingVerifier
from services.common.health import Health
from services.common.logs import configure_logging
from services.common.metrics import Metrics
from services.common.openapi import build_openapi
from services.common.sanic_routes import mount
from services.common.sanic_support import check_with_timeout, install
from services.common.tracing import Tracing


class CacheContext(SimpleNamespace):
    """What ``app.ctx`` holds; ``store`` and ``metrics`` exist once a worker has started."""

    settings: CacheSettings
    health: Health
    verifier: CachingVerifier
    metrics: Metrics
    tracing: Tracing | None
    store: CacheStore


CacheApp = Sanic[Config, CacheContext]


def create_app(
    settings: CacheSettings | None = None, span_exporter: SpanExporter | None = None
) -> CacheApp:
    """Build the cache app; settings come from the environment unless given."""
    settings = settings or CacheSettings()
    configure_logging("cache", settings.log_level)
    app: CacheApp = Sanic("strata-cache", ctx=CacheContext(), configure_logging=False)
    app.config.MOTD = False
    # Explicit, so a missing uvloop shows as a start-up warning rather than going unnoticed.
    app.config.USE_UVLOOP = True
    app.config.ACCESS_LOG = False  # the shared middleware writes one JSON line per request
    check = check_with_timeout(settings.store_timeout)

    async def readiness(app: Sanic[Any, Any]) -> Mapping[str, str]:
        store: CacheStore | None = getattr(app.ctx, "store", None)
        if store is None:
            return {"redis": "not started"}
        return {"redis": await check(store.ping)}

    install(
        app,
        service="cache",
        settings=settings,
        readiness=readiness,
        openapi=lambda: build_openapi(INFO, settings, (e.operation for e in ENDPOINTS)),
        refusal=errors.problem,
        span_exporter=span_exporter,
    )

    @app.before_server_start
    async def open_store(app: CacheApp) -> None:
        # One pool per worker, after the fork; registered after install() so metrics exist.
        app.ctx.store = CacheStore(settings, app.ctx.metrics)
        await app.ctx.store.start()
        await app.ctx.store.warm()
        # Instrumented after the warm-up: start-up calls, like readiness pings, get no span.
        if app.ctx.tracing is not None:
            tracing.instrument_redis(app.ctx.tracing)

    @app.after_server_stop
    async def close_store(app: CacheApp) -> None:
        await app.ctx.store.close()

    mount(app, ENDPOINTS, segments={"key": "<key:path>"})
    return app
