"""Tracing on ml: a server span per request continuing the caller's traceparent, SQL spans
under it; captured in process by the SDK's in-memory exporter (ASGI)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sanic import Sanic

from services.ml.app import create_app
from services.ml.settings import MlSettings
from tests.integration.ml.conftest import ALL_SCOPES, TokenFactory
from tests.support.asgi import served

pytestmark = pytest.mark.integration

CALLER_TRACE = "5c7d3e1f9a2b4c6d8e0f1a2b3c4d5e6f"
TRACEPARENT = f"00-{CALLER_TRACE}-1a2b3c4d5e6f7a8b-01"


@pytest.fixture
def in_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ml_db: dict[str, str]
) -> Iterator[MlSettings]:
    for name, value in ml_db.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("STRATA_ML_ENVIRONMENT", "development")  # the test tokens' key
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    previous = Sanic.test_mode
    Sanic.test_mode = True
    yield MlSettings()
    Sanic.test_mode = previous
    AsyncPGInstrumentor().uninstrument()


def test_server_span_continues_the_trace_with_sql_spans_under_it(
    in_process: MlSettings, make_token: TokenFactory
) -> None:
    spans = InMemorySpanExporter()
    app = create_app(in_process, span_exporter=spans)
    auth = {"Authorization": f"Bearer {make_token('ml', *ALL_SCOPES)}"}
    name = f"t-{uuid.uuid4().hex[:8]}"

    async def exercise() -> int:
        async with served(app) as client:
            await client.put(f"/v1/collections/{name}", headers=auth)
            spans.clear()
            got = await client.get(
                f"/v1/collections/{name}/documents", headers={**auth, "traceparent": TRACEPARENT}
            )
            return got.status_code

    assert asyncio.run(exercise()) == 200
    finished = spans.get_finished_spans()
    (server,) = [s for s in finished if s.kind is SpanKind.SERVER]
    assert server.name.startswith("GET /v1/collections/")
    assert f"{server.context.trace_id:032x}" == CALLER_TRACE
    sql = [s for s in finished if s.kind is SpanKind.CLIENT]
    assert sql, [(s.name, s.kind) for s in finished]
    assert {s.context.trace_id for s in sql} == {server.context.trace_id}
    assert any("SELECT" in str(s.attributes.get("db.statement", "")) for s in sql), [
        (s.name, dict(s.attributes)) for s in sql
    ]
