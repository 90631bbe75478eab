"""Application factory of the critical service: wiring only, no work at import time."""

from __future__ import annotations

from flask import Flask
from opentelemetry.sdk.trace.export import SpanExporter

from services.common import tracing
from services.common.health import Health
from services.common.logs import configure_logging
from services.common.metrics import Metrics
from services.common.openapi import build_openapi
from services.critical import api, db, errorlog, reads
from services.critical.api import errors
from services.critical.errors import LedgerError
from services.critical.routing import mount
from services.critical.settings import CriticalSettings
from services.critical.spec import INFO
from services.critical.web import install, problem_response

HEALTH_EXTENSION = "strata.health"


def create_app(
    settings: CriticalSettings | None = None, span_exporter: SpanExporter | None = None
) -> Flask:
    """Build the Flask app with its own engine, pool, metrics and health state.

    gunicorn calls this in each worker (no preload), so tracing starts after the fork.
    ``span_exporter`` forces tracing on into it (tests); otherwise OTEL_* decide.
    """
    settings = settings or CriticalSettings()
    configure_logging("critical", settings.log_level)
    app = Flask(__name__)
    app.config["STRATA_SETTINGS"] = settings

    metrics = Metrics("critical", settings.version, settings.revision)
    engine = db.init_app(app, settings, metrics)
    traced = tracing.start("critical", settings.version, exporter=span_exporter)
    if traced is not None:
        tracing.instrument_sqlalchemy(traced, [engine])
    reads.use_driver_cursor(app, enabled=traced is None)
    health = Health()
    app.extensions[HEALTH_EXTENSION] = health
    app.extensions["strata.metrics"] = metrics

    install(
        app,
        settings=settings,
        metrics=metrics,
        health=health,
        readiness=lambda: {"database": db.ping_within(engine, settings.readiness_timeout)},
        store_problem=db.as_problem,
        describe_error=errorlog.describe,
        openapi=lambda: build_openapi(INFO, settings, (e.operation for e in api.ENDPOINTS)),
        tracing=traced,
    )
    app.register_error_handler(LedgerError, lambda exc: problem_response(errors.problem(exc)))
    mount(app, api.ENDPOINTS)
    return app
