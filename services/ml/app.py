"""The ml service's Sanic app factory: wiring only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter
from sanic import Sanic
from sanic.config import Config

from services.common import tracing
from services.common.logs import configure_logging
from services.common.openapi import build_openapi
from services.common.sanic_routes import mount
from services.common.sanic_support import check_with_timeout, install
from services.ml.api import ENDPOINTS, SEGMENTS, errors
from services.ml.context import MlContext, MlMetrics
from services.ml.exports import ExportSlots
from services.ml.settings import MlSettings
from services.ml.snapshots import SnapshotHolders
from services.ml.spec import INFO
from services.ml.store import Store

MlApp = Sanic[Config, MlContext]


def create_app(
    settings: MlSettings | None = None, span_exporter: SpanExporter | None = None
) -> MlApp:
    """Build the app; pools are opened per worker in ``before_server_start``."""
    settings = settings or MlSettings()
    configure_logging("ml", settings.log_level)
    app: MlApp = Sanic("strata-ml", ctx=MlContext(), config=Config(), configure_logging=False)
    check = check_with_timeout(settings.readiness_timeout)

    async def readiness(app: Sanic[Any, Any]) -> Mapping[str, str]:
        store: Store | None = getattr(app.ctx, "store", None)
        return {"postgres": await check(store.ping) if store else "not started"}

    install(
        app,
        service="ml",
        settings=settings,
        readiness=readiness,
        openapi=lambda: build_openapi(INFO, settings, (e.operation for e in ENDPOINTS)),
        refusal=errors.problem,
        span_exporter=span_exporter,
    )
    mount(app, ENDPOINTS, SEGMENTS)

    @app.before_server_start
    async def _open_store(app: MlApp) -> None:
        # After the fork, once per worker: no pool is ever shared across processes.
        capacity = settings.pool_size + settings.max_overflow
        app.ctx.ml_metrics = MlMetrics(app.ctx.metrics, capacity)
        app.ctx.store = Store(
            settings,
            on_pool_change=app.ctx.ml_metrics.pool_changed,
            snapshot_holders=settings.export_snapshots_max,
        )
        if app.ctx.tracing is not None:
            tracing.instrument_asyncpg(app.ctx.tracing)
        app.ctx.exports = ExportSlots(settings.export_max_concurrent, settings.export_retry_after)
        app.ctx.snapshots = SnapshotHolders(
            settings.export_snapshots_max, settings.export_snapshot_ttl
        )
        await app.ctx.store.warm()

    @app.after_server_stop
    async def _close_store(app: MlApp) -> None:
        await app.ctx.snapshots.close()  # before the pools: each holds a connection
        await app.ctx.store.close()

    return app
