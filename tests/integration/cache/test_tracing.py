"""Tracing on cache: a server span per request continuing the caller's traceparent, Redis
spans under it; captured in process by the SDK's in-memory exporter (ASGI)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sanic import Sanic

from services.cache.app import create_app
from services.cache.settings import CacheSettings
from services.devstack.redis import RedisServer
from tests.integration.cache.conftest import TokenFactory, cache_env
from tests.support.asgi import served

pytestmark = pytest.mark.integration

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{CALLER_TRACE}-b7ad6b7169203331-01"


@pytest.fixture
def in_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_server: RedisServer
) -> Iterator[CacheSettings]:
    for name, value in cache_env(redis_server).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("STRATA_CACHE_ENVIRONMENT", "development")  # the test tokens' key
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    previous = Sanic.test_mode
    Sanic.test_mode = True  # several apps named strata-cache may exist in one process
    yield CacheSettings()
    Sanic.test_mode = previous
    RedisInstrumentor().uninstrument()


def test_server_span_continues_the_trace_with_redis_spans_under_it(
    in_process: CacheSettings, make_token: TokenFactory
) -> None:
    spans = InMemorySpanExporter()
    app = create_app(in_process, span_exporter=spans)
    token = make_token("cache", "cache:read", "cache:write")

    async def exercise() -> tuple[int, str]:
        async with served(app) as client:
            put = await client.put(
                "/v1/kv/traced",
                json={"value": 1},
                headers={"Authorization": f"Bearer {token}", "traceparent": TRACEPARENT},
            )
            await client.get("/readyz")  # a probe: no span
            return put.status_code, put.headers["traceresponse"]

    status, traceresponse = asyncio.run(exercise())
    assert status == 200
    finished = spans.get_finished_spans()
    (server,) = [s for s in finished if s.kind is SpanKind.SERVER]
    assert server.name == "PUT /v1/kv/<key:path>"
    assert f"{server.context.trace_id:032x}" == CALLER_TRACE
    assert f"{server.parent.span_id:016x}" == "b7ad6b7169203331"  # type: ignore[union-attr]
    assert traceresponse == f"00-{CALLER_TRACE}-{server.context.span_id:016x}-01"
    # The PUT's Redis calls sit under its span; the probe's readiness ping made none.
    redis_spans = [s for s in finished if s.kind is SpanKind.CLIENT]
    assert redis_spans, [(s.name, s.kind) for s in finished]
    assert {s.context.trace_id for s in redis_spans} == {server.context.trace_id}
    assert {s.parent.span_id for s in redis_spans if s.parent} == {server.context.span_id}
