"""The typed ``app.ctx`` of the ml service and its own metrics."""

from __future__ import annotations

from typing import cast

from prometheus_client import Counter, Gauge
from sanic import Request

from services.common.cache import CachingVerifier
from services.common.health import Health
from services.common.metrics import Metrics
from services.common.tracing import Tracing
from services.ml.exports import ExportSlots
from services.ml.settings import MlSettings
from services.ml.snapshots import SnapshotHolders
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
        self.exports_refused: Counter = metrics.counter(
            "strata_ml_exports_refused",
            "Exports refused with 429 because the worker's export budget was in use.",
        )
        self.exports_stalled: Counter = metrics.counter(
            "strata_ml_exports_stalled",
            "Exports aborted because the client left the stream unread past the deadline.",
        )

    def pool_changed(self, in_use: int) -> None:
        """Record this worker's checked-out connections."""
        self.pool_in_use.labels(self.service).set(in_use)

    def count_ingested(self, n: int) -> None:
        """Documents landed by a bulk ingest."""
        self.ingested.labels(self.service).inc(n)

    def count_exported(self, n: int) -> None:
        """Documents sent by an export."""
        self.exported.labels(self.service).inc(n)

    def export_refused(self) -> None:
        """An export answered 429."""
        self.exports_refused.labels(self.service).inc()

    def export_stalled(self) -> None:
        """An export cut off because its client stopped reading."""
        self.exports_stalled.labels(self.service).inc()


class MlContext:
    """What every worker holds; filled by ``install`` and the ml listeners."""

    settings: MlSettings
    health: Health
    verifier: CachingVerifier
    metrics: Metrics
    tracing: Tracing | None
    ml_metrics: MlMetrics
    store: Store
    exports: ExportSlots
    snapshots: SnapshotHolders


def ctx(request: Request) -> MlContext:
    """The typed context of the app serving ``request``."""
    return cast(MlContext, request.app.ctx)
