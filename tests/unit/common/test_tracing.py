"""When the OTEL_* variables turn tracing on, and what they may ask for."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.common import tracing


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none,otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),  # an endpoint alone: off
    ],
)
def test_requested(env: dict[str, str], on: bool) -> None:
    assert tracing.requested(env) is on


def test_off_means_no_tracer_at_all() -> None:
    assert tracing.start("cache", "1.0", env={}) is None


def test_refuses_what_the_image_cannot_export() -> None:
    with pytest.raises(tracing.TracingConfigError, match="zipkin"):
        tracing.start("cache", "1.0", env={"OTEL_TRACES_EXPORTER": "zipkin"})
    grpc = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    with pytest.raises(tracing.TracingConfigError, match="http/protobuf"):
        tracing.start("cache", "1.0", env=grpc)


def test_the_service_name_and_a_span_through_the_in_memory_exporter() -> None:
    spans = InMemorySpanExporter()
    traced = tracing.start("ml", "9.9", exporter=spans, env={"OTEL_SERVICE_NAME": "ml-eu"})
    assert traced is not None
    started = tracing.server_span(traced.tracer, "GET", "/v1/x", {}, traced=True)
    assert tracing.current_ids() is not None  # current while the request runs
    assert started.finish("GET", "/v1/x", 503) is not None
    assert tracing.current_ids() is None
    (span,) = spans.get_finished_spans()
    assert span.resource.attributes["service.name"] == "ml-eu"
    assert span.resource.attributes["service.version"] == "9.9"
    assert span.status.is_ok is False  # a 5xx marks the span failed
    quiet = tracing.server_span(traced.tracer, "GET", "/livez", {}, traced=False)
    assert quiet.finish("GET", "/livez", 200) is None
    assert len(spans.get_finished_spans()) == 1
