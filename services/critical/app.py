"""Application factory of the critical service: wiring only, no work at import time."""

from __future__ import annotations

from flask import Flask

from services.common.health import Health
from services.common.logs import configure_logging
from services.common.metrics import Metrics
from services.critical import api, db, errorlog
from services.critical.api.deps import EXTENSION, close_session
from services.critical.openapi import document
from services.critical.settings import CriticalSettings
from services.critical.web import install

HEALTH_EXTENSION = "strata.health"


def create_app(settings: CriticalSettings | None = None) -> Flask:
    """Build the Flask app with its own engine, pool, metrics and health state."""
    settings = settings or CriticalSettings()
    configure_logging("critical", settings.log_level)
    app = Flask(__name__)
    app.config["STRATA_SETTINGS"] = settings

    engine = db.make_engine(settings)
    metrics = Metrics("critical", settings.version, settings.revision)
    db.instrument_pool(engine, metrics, settings.pool_size + settings.max_overflow)
    health = Health()
    app.extensions[EXTENSION] = db.make_sessionmaker(engine, settings.statement_timeout_ms / 1000)
    app.extensions[HEALTH_EXTENSION] = health
    app.extensions["strata.engine"] = engine
    app.extensions["strata.metrics"] = metrics
    app.teardown_appcontext(close_session)

    install(
        app,
        settings=settings,
        metrics=metrics,
        health=health,
        readiness=lambda: {"database": db.ping(engine)},
        store_problem=db.as_problem,
        describe_error=errorlog.describe,
        openapi=lambda: document(settings.version),
    )
    api.register(app)
    return app
