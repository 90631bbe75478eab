"""Tracing on critical: a server span per request, the caller's traceparent continued, SQL
spans under it, the trace id in the log line; captured by the SDK's in-memory exporter."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.common.logs import JsonFormatter
from services.critical.app import create_app
from services.critical.settings import CriticalSettings

pytestmark = pytest.mark.integration

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="module")
def traced_app(
    critical_settings_migrated: CriticalSettings, spans: InMemorySpanExporter
) -> Iterator[Flask]:
    application = create_app(critical_settings_migrated, span_exporter=spans)
    yield application
    application.extensions["strata.engine"].dispose()
    SQLAlchemyInstrumentor().uninstrument()  # the instrumentor is process-wide


def test_a_request_continues_the_callers_trace(
    traced_app: Flask,
    spans: InMemorySpanExporter,
    make_token: Callable[..., str],
) -> None:
    spans.clear()
    token = make_token("critical", "accounts:write")
    client = traced_app.test_client()
    # The service's own JSON formatter, formatting as records are emitted (as in production).
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter("critical"))
    http_log = logging.getLogger("strata.http")
    http_log.addHandler(handler)
    try:
        created = client.post(
            "/v1/accounts",
            json={"owner": "traced", "currency": "EUR"},
            headers={"Authorization": f"Bearer {token}", "traceparent": TRACEPARENT},
        )
    finally:
        http_log.removeHandler(handler)
    assert created.status_code == 201
    finished = spans.get_finished_spans()
    (server,) = [s for s in finished if s.kind is SpanKind.SERVER]
    assert server.name == "POST /v1/accounts"
    assert f"{server.context.trace_id:032x}" == CALLER_TRACE
    assert server.parent is not None
    assert f"{server.parent.span_id:016x}" == "00f067aa0ba902b7"
    assert server.attributes["http.response.status_code"] == 201
    assert server.attributes["http.route"] == "/v1/accounts"
    sql = [s for s in finished if s.kind is SpanKind.CLIENT]
    assert sql, [(s.name, s.kind) for s in finished]
    assert all(s.context.trace_id == server.context.trace_id for s in sql)
    assert all(s.parent is not None and s.parent.span_id == server.context.span_id for s in sql)
    assert any("INSERT" in str(s.attributes.get("db.statement", "")) for s in sql)
    # The answer names the server span, so a caller can find it (W3C traceresponse).
    assert created.headers["traceresponse"] == (
        f"00-{CALLER_TRACE}-{server.context.span_id:016x}-01"
    )
    # The request's log line carries the same ids.
    (rendered,) = [
        json.loads(line)
        for line in lines.getvalue().splitlines()
        if json.loads(line).get("route") == "/v1/accounts"
    ]
    assert rendered["trace_id"] == CALLER_TRACE
    assert rendered["span_id"] == f"{server.context.span_id:016x}"


def test_a_request_without_traceparent_starts_a_trace_and_probes_get_none(
    traced_app: Flask, spans: InMemorySpanExporter, make_token: Callable[..., str]
) -> None:
    spans.clear()
    client = traced_app.test_client()
    token = make_token("critical", "accounts:read")
    missing = client.get(
        "/v1/accounts/00000000-0000-4000-8000-000000000000",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert missing.status_code == 404
    assert client.get("/livez").status_code == 200
    (server,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert server.parent is None
    assert server.name == "GET /v1/accounts/<account_id>"
    assert server.attributes["http.response.status_code"] == 404
    # Traced, the read runs through SQLAlchemy (not the driver's cursor): its SQL has a span.
    sql = [s for s in spans.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert any("FROM accounts" in str(s.attributes.get("db.statement", "")) for s in sql), sql
    assert all(s.parent is not None and s.parent.span_id == server.context.span_id for s in sql)


def test_tracing_is_off_without_otel_variables(
    critical_settings_migrated: CriticalSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    plain = create_app(critical_settings_migrated)
    try:
        answer = plain.test_client().get("/livez", headers={"traceparent": TRACEPARENT})
        assert "traceresponse" not in answer.headers
        assert plain.test_client().get("/openapi.json").headers.get("traceresponse") is None
    finally:
        plain.extensions["strata.engine"].dispose()
