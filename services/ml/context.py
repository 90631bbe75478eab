"""The typed ``app.ctx`` of the ml service and its own metrics."""

from __future__ import annotations

from typing import cast

from prometheus_client import Counter, Gauge
from sanic import Request

from services.common.cache import CachingVerifier
from services.common.health import Health
from services.common.metrics import Metrics
from services.ml.settings import MlSettings
from services.ml.store import Store


class MlMetrics:
    """ml-specific series, registered on the worker's shared :class:`Metrics`."""

    def __init__(self, metrics: Metrics, pool_capacity: int) -> None:
        self.service = metrics.service
        self.ingested: Counter = metrics.counter(
            "strata_ml_documents_ingested", "Documents written by bulk ingest."
        )
        self.exported: Counter = metrics.counter(
            "strata_ml_documents_exported", "Documents streamed by exports."
        )
        self.pool_in_use: Gauge = metrics.gauge(
            "strata_db_pool_connections_in_use",
            "Database connections checked out of the pool (summed over workers).",
        )
        capacity = metrics.gauge(
            "strata_db_pool_connections_max",
            "Database connections the pools may open (summed over workers).",
        )
        capacity.labels(self.service).set(pool_capacity)

    def pool_changed(self, in_use: int) -> None:
        """Record this worker's checked-out connections."""
        self.pool_in_use.labels(self.service).set(in_use)

    def count_ingested(self, n: int) -> None:
        """Documents landed by a bulk ingest."""
        self.ingested.labels(self.service).inc(n)

    def count_exported(self, n: int) -> None:
        """Documents sent by an export."""
        self.exported.labels(self.service).inc(n)


class MlContext:
    """What every worker holds; filled by ``install`` and the ml listeners."""

    settings: MlSettings
    health: Health
    verifier: CachingVerifier
    metrics: Metrics
    ml_metrics: MlMetrics
    store: Store


def ctx(request: Request) -> MlContext:
    """The typed context of the app serving ``request``."""
    return cast(MlContext, request.app.ctx)
