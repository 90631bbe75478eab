"""OpenTelemetry tracing: off unless the standard ``OTEL_*`` variables turn it on.

``OTEL_TRACES_EXPORTER=otlp`` (OTLP over HTTP/protobuf, to ``OTEL_EXPORTER_OTLP_ENDPOINT``
or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) or ``console`` turns it on; unset or ``none``
leaves it off, and ``OTEL_SDK_DISABLED=true`` wins over both. Everything else is the SDK's
own reading of the environment: ``OTEL_SERVICE_NAME`` (default ``strata-<service>``),
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``/``_ARG``, ``OTEL_PROPAGATORS``
(default W3C ``traceparent`` and baggage), ``OTEL_BSP_*``, ``OTEL_EXPORTER_OTLP_HEADERS``.

Set up once per worker process, after the fork (the batch processor runs a thread). The
HTTP server span is started and ended by :class:`services.common.observe.RequestObserver`;
the store spans come from the SQLAlchemy and redis-py instrumentations (each service
calls the one it needs); log records carry the trace and span ids (``logs.py``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

_EXPORTERS = ("otlp", "console")


class TracingConfigError(ValueError):
    """The OTEL_* variables ask for something this build cannot do."""


def requested(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment turns tracing on (see the module docstring)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    names = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",")]
    return any(n and n != "none" for n in names)


def _exporters(env: Mapping[str, str]) -> list[SpanExporter]:
    names = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",")]
    chosen: list[SpanExporter] = []
    for name in filter(None, names):
        if name == "none":
            continue
        if name not in _EXPORTERS:
            raise TracingConfigError(f"OTEL_TRACES_EXPORTER={name}: supported are otlp, console")
        if name == "console":
            chosen.append(ConsoleSpanExporter())
            continue
        protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
        )
        if protocol != "http/protobuf":
            raise TracingConfigError(f"OTLP protocol {protocol}: this image ships http/protobuf")
        # Imported here: only a worker that exports OTLP pays for protobuf.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        chosen.append(OTLPSpanExporter())
    return chosen


@dataclass(frozen=True, slots=True)
class Tracing:
    """A worker's tracer and its provider (for the store instrumentations)."""

    provider: TracerProvider
    tracer: trace.Tracer

    def shutdown(self) -> None:
        """Flush what is buffered (worker exit)."""
        self.provider.shutdown()


def start(
    service: str,
    version: str,
    exporter: SpanExporter | None = None,
    env: Mapping[str, str] = os.environ,
) -> Tracing | None:
    """This worker's tracing, or None when the environment leaves it off.

    ``exporter`` (tests: the SDK's ``InMemorySpanExporter``) forces it on, exporting
    synchronously, without touching the process-wide provider.
    """
    if exporter is None and not requested(env):
        return None
    resource = Resource.create(
        {
            SERVICE_NAME: env.get("OTEL_SERVICE_NAME") or f"strata-{service}",
            SERVICE_VERSION: version,
        }
    )
    provider = TracerProvider(resource=resource)  # the sampler is the SDK's, from OTEL_*
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        for chosen in _exporters(env):
            provider.add_span_processor(BatchSpanProcessor(chosen))
        trace.set_tracer_provider(provider)
    return Tracing(provider, provider.get_tracer("strata.http", version))


@dataclass(slots=True)
class ServerSpan:
    """The span of one HTTP request, current while the request is handled.

    ``span`` is None for a probe or scrape: it gets no span, and the store calls it
    makes (a readiness ping) make none either, so they do not fill traces with roots.
    """

    span: Span | None
    token: object

    def finish(self, method: str, route: str, status: int) -> str | None:
        """End the span with the route and status; the ``traceresponse`` value, if a span."""
        context.detach(self.token)  # type: ignore[arg-type]
        if self.span is None:
            return None
        self.span.update_name(f"{method} {route}")
        self.span.set_attribute("http.route", route)
        self.span.set_attribute("http.response.status_code", status)
        if status >= 500:
            self.span.set_status(Status(StatusCode.ERROR))
        ids = self.span.get_span_context()
        self.span.end()
        return f"00-{ids.trace_id:032x}-{ids.span_id:016x}-{int(ids.trace_flags):02x}"


def server_span(
    tracer: trace.Tracer, method: str, path: str, headers: Mapping[str, str], traced: bool
) -> ServerSpan:
    """Start the request's server span as a child of the caller's ``traceparent``, if any;
    with ``traced`` false, suppress every span until :meth:`ServerSpan.finish`."""
    if not traced:
        quiet = context.set_value(context._SUPPRESS_INSTRUMENTATION_KEY, True)
        return ServerSpan(None, context.attach(quiet))
    parent = propagate.extract(headers)
    span = tracer.start_span(
        method,  # renamed to "<method> <route>" once the route is known
        context=parent,
        kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "url.path": path},
    )
    token = context.attach(trace.set_span_in_context(span, parent))
    return ServerSpan(span, token)


def current_ids() -> tuple[str, str] | None:
    """The current span's trace and span ids in hex, for the log line (None outside)."""
    ids = trace.get_current_span().get_span_context()
    if not ids.is_valid:
        return None
    return f"{ids.trace_id:032x}", f"{ids.span_id:016x}"


def instrument_sqlalchemy(tracing: Tracing, engines: list[Any]) -> None:
    """SQL spans for these (sync) engines; an async engine passes its ``sync_engine``."""
    # Imported here: the cache image has no SQLAlchemy instrumentation.
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # The 0.66b1 instrumentation declares SQLAlchemy < 2.1 and would do nothing on 2.1.9;
    # the engine events it hooks are unchanged in 2.1, and the tests prove its spans here.
    SQLAlchemyInstrumentor().instrument(
        engines=engines, tracer_provider=tracing.provider, skip_dep_check=True
    )


def instrument_asyncpg(tracing: Tracing) -> None:
    """SQL spans for every asyncpg connection of the process (through SQLAlchemy or not)."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    AsyncPGInstrumentor().instrument(tracer_provider=tracing.provider)  # type: ignore[no-untyped-call]


def instrument_redis(tracing: Tracing) -> None:
    """Redis command spans for every redis-py client of the process (asyncio ones too)."""
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor().instrument(tracer_provider=tracing.provider)
