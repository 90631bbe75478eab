"""Prometheus metrics that add up across worker processes.

With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn and Sanic with several workers), every
worker writes its values to files in that directory and a scrape of any worker sums
them all (``MultiProcessCollector``), so a scrape never looks like a counter reset.
Without it (a single process, unit tests) an app-local registry is used.

The variable must be set before ``prometheus_client`` is imported; the servers' entry
points (gunicorn config, Sanic main) call :func:`prepare_multiproc_dir` first.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

ENV = "PROMETHEUS_MULTIPROC_DIR"
GaugeMode = Literal["all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum"]
#: Methods labelled as themselves; any other method name is labelled ``other``, so a client
#: inventing methods cannot create unbounded series (nor a multi-megabyte /metrics).
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}
)
OTHER_METHOD = "other"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def prepare_multiproc_dir(path: str | None = None) -> str | None:
    """Create an empty multiprocess directory (wiped: stale files would double-count).

    Call once in the parent process before any worker starts. Returns the directory.
    """
    target = path or os.environ.get(ENV)
    if not target:
        return None
    directory = Path(target)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(directory)
    return str(directory)


def mark_worker_dead(pid: int) -> None:
    """Tell the multiprocess collector a worker is gone (its live gauges stop counting)."""
    if os.environ.get(ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def method_label(method: str) -> str:
    """The ``method`` label of a request: the method itself if known, else ``other``."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


class Metrics:
    """The metrics every service exports, plus factories for store-specific ones.

    ``http_requests_total{service,method,route,status}``,
    ``http_request_duration_seconds{service,method,route}``,
    ``http_requests_in_progress{service,method}`` and ``strata_build_info``.
    ``route`` is always the route template, never the raw path; ``method`` is one of
    :data:`KNOWN_METHODS` or ``other``.

    A request whose client went away before the answer was sent is counted with
    ``status="499"`` (nginx's "client closed request"), not as a 5xx: the server did
    nothing wrong, and a burst of impatient clients must not fire the 5xx alert, whose
    ``status=~"5.."`` selector does not match it. The answer itself is never sent.
    """

    def __init__(self, service: str, version: str = "0.1.0", revision: str = "unknown") -> None:
        self.service = service
        self.multiprocess = bool(os.environ.get(ENV))
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests handled, by route template and status.",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency, by route template.",
            ["service", "method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "http_requests_in_progress",
            "HTTP requests being handled now.",
            ["service", "method"],
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        build_info = Gauge(
            "strata_build_info",
            "Build information; the value is always 1.",
            ["service", "version", "revision"],
            multiprocess_mode="max",
            registry=self.registry,
        )
        build_info.labels(service, version, revision).set(1)
        # Label lookups cost more than the increments; keep the children per label set.
        self._live: dict[str, Any] = {}
        self._done: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        """A service-specific counter; ``service`` is always the first label."""
        return Counter(name, doc, ["service", *labels], registry=self.registry)

    def gauge(
        self, name: str, doc: str, labels: Sequence[str] = (), mode: GaugeMode = "livesum"
    ) -> Gauge:
        """A service-specific gauge summed over live workers by default."""
        return Gauge(
            name, doc, ["service", *labels], multiprocess_mode=mode, registry=self.registry
        )

    def histogram(
        self,
        name: str,
        doc: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> Histogram:
        """A service-specific histogram."""
        return Histogram(name, doc, ["service", *labels], buckets=buckets, registry=self.registry)

    def _in_progress(self, method: str) -> Any:
        method = method_label(method)
        child = self._live.get(method)
        if child is None:
            child = self._live[method] = self.in_progress.labels(self.service, method)
        return child

    def request_started(self, method: str) -> None:
        """Count a request in flight."""
        self._in_progress(method).inc()

    def request_finished(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record a finished request under its route template."""
        self._in_progress(method).dec()
        method = method_label(method)
        key = (method, route, status)
        children = self._done.get(key)
        if children is None:
            children = self._done[key] = (
                self.requests.labels(self.service, method, route, str(status)),
                self.duration.labels(self.service, method, route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition text of every worker (or this process) and its content type."""
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
