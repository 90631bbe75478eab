"""What every request goes through, whatever the framework: id, metrics, CORS, log line.

The Flask and Sanic glue call :meth:`RequestObserver.begin` and
:meth:`RequestObserver.finish`; only how they read the request and set headers differs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.common.cors import cors_headers
from services.common.logs import log_request
from services.common.metrics import Metrics
from services.common.requestid import HEADER, choose_request_id, current_request_id
from services.common.tracing import ServerSpan, Tracing, server_span

UNMATCHED = "<unmatched>"
_QUIET = frozenset({"/livez", "/readyz", "/metrics"})
logger = logging.getLogger("strata.http")


@dataclass(slots=True)
class Exchange:
    """One request in flight."""

    request_id: str
    method: str
    origin: str | None
    started: float
    span: ServerSpan | None = None


class RequestObserver:
    """Request ids, in-flight and finished-request metrics, CORS headers, the log line."""

    def __init__(self, origins: Sequence[str]) -> None:
        self.origins = list(origins)
        #: Set per worker when OTEL_* turn tracing on (services.common.tracing).
        self.tracing: Tracing | None = None

    def begin(
        self,
        method: str,
        incoming_id: str | None,
        origin: str | None,
        metrics: Metrics | None,
        *,
        path: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> tuple[Exchange, dict[str, str] | None]:
        """Start a request; the second value is a preflight answer's headers, if it is one.

        With tracing on, ``headers`` (the request's) carry the caller's ``traceparent``;
        probes and metrics scrapes get no span.
        """
        exchange = Exchange(choose_request_id(incoming_id), method, origin, time.perf_counter())
        current_request_id.set(exchange.request_id)
        if self.tracing is not None and headers is not None:
            traced = path not in _QUIET
            exchange.span = server_span(self.tracing.tracer, method, path, headers, traced)
        if metrics is not None:
            metrics.request_started(method)
        if method == "OPTIONS" and self.origins:
            preflight = cors_headers(origin, self.origins, preflight=True)
            if preflight:
                return exchange, preflight
        return exchange, None

    def finish(
        self,
        exchange: Exchange | None,
        *,
        method: str,
        origin: str | None,
        route: str | None,
        status: int,
        metrics: Metrics | None,
    ) -> dict[str, str]:
        """Record the finished request; returns the headers the response must carry.

        ``exchange`` is None when the framework answered before :meth:`begin` ran (e.g. a
        body rejected while it was read); the request is then counted here in one go.
        """
        if exchange is None:
            exchange, _ = self.begin(method, None, origin, metrics)
        duration = time.perf_counter() - exchange.started
        template = route or UNMATCHED
        if metrics is not None:
            metrics.request_finished(method, template, status, duration)
        if template not in _QUIET:
            log_request(logger, method=method, route=template, status=status, duration=duration)
        headers = {HEADER: exchange.request_id}
        if exchange.span is not None:  # after the log line, which carries its trace id
            traceresponse = exchange.span.finish(method, template, status)
            exchange.span = None
            if traceresponse is not None:
                headers["traceresponse"] = traceresponse
        if self.origins:
            headers.update(cors_headers(origin, self.origins, preflight=False))
        return headers
