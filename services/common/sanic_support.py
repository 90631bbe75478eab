"""Sanic glue shared by the ml and cache services.

One call, :func:`install`, wires what every Sanic service has: request ids, the
per-request log line, metrics by route template, problem+json errors, CORS,
``/livez``, ``/readyz``, ``/metrics`` and ``/openapi.json``, plus draining on shutdown.
Only imported by Sanic services (the critical image has no Sanic).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast

from opentelemetry.sdk.trace.export import SpanExporter
from sanic import Blueprint, HTTPResponse, Request, Sanic
from sanic.exceptions import (
    BadRequest,
    HeaderExpectationFailed,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    RequestCancelled,
    SanicException,
)
from sanic.response import BaseHTTPResponse, raw

from services.common import apidocs, problems, tracing
from services.common.auth import Principal, TokenVerifier
from services.common.cache import CachingVerifier
from services.common.compression import (
    OFFLOAD_BYTES,
    Compressor,
    accepts_gzip,
    gzip_body,
    vary_merged,
)
from services.common.health import LIVE_BODY, Health
from services.common.jsonbody import dumps
from services.common.metrics import Metrics, mark_worker_dead
from services.common.observe import RequestObserver
from services.common.outgoing import Action, Answer, Asked, plan
from services.common.probes import PROBES, route_name
from services.common.problems import PROBLEM_CONTENT_TYPE, Problem
from services.common.requestid import HEADER
from services.common.settings import ServiceSettings

logger = logging.getLogger("strata.http")

App = Sanic[Any, Any]
ReadinessCheck = Callable[[App], Awaitable[Mapping[str, str]]]
#: What every route that answers GET takes: HEAD is the same answer without the body.
READ_METHODS = ("GET", "HEAD")
# A streaming handler sends its own response and returns None.
Handler = TypeVar("Handler", bound=Callable[..., Awaitable[HTTPResponse | None]])
# The methods a 405's Allow header may name (OPTIONS is answered only as a CORS preflight).
_ROUTABLE = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> HTTPResponse:
    """A JSON response serialised with orjson."""
    return raw(
        dumps(data), status=status, headers=dict(headers or {}), content_type="application/json"
    )


def problem_response(problem: Problem) -> HTTPResponse:
    """Render a :class:`Problem` as problem+json."""
    return raw(
        dumps(problem.to_dict()),
        status=problem.status,
        headers=problem.headers,
        content_type=PROBLEM_CONTENT_TYPE,
    )


def principal(request: Request, *scopes: str) -> Principal:
    """Authenticate the request's bearer token and require ``scopes`` (401/403 problems)."""
    verifier: CachingVerifier = request.app.ctx.verifier
    who = verifier.verify_header(request.headers.get("authorization"))
    who.require(*scopes)
    return who


def read_route(target: App | Blueprint, uri: str, *, name: str) -> Callable[[Handler], Handler]:
    """Route GET and HEAD to the decorated handler (Sanic sends HEAD answers without body).

    Like every route here it reads a request body before the handler (which ignores it).
    Sanic's GET default, ``ignore_body=True``, drains the body after the answer instead and
    logs "body not consumed" at ERROR each time: a client that frames every GET with
    ``Content-Length: 0`` (wrk, some HTTP libraries) made an error line per request, a
    tenth of the cache GET's CPU. Reading first costs nothing when there is no body, and an
    over-limit one is a 413 as on any route.
    """
    return cast(Callable[[Handler], Handler], target.route(uri, methods=READ_METHODS, name=name))


def allowed_methods(request: Request) -> list[str]:
    """The methods the request's path answers, for a 405's ``Allow`` header.

    Found by asking the router for every method, so it is right for every route shape
    (Sanic itself leaves ``allowed_methods`` empty for regex routes). A route whose
    ``ctx.applies(params)`` is false for this path does not count (e.g. POST on a counter
    path that does not end in ``:incr``).
    """
    found: list[str] = []
    host = request.headers.getone("host", None)
    for method in _ROUTABLE:
        try:
            route, _, params = request.app.router.get(request.path, method, host)
        except SanicException:  # NotFound or MethodNotAllowed
            continue
        applies: Callable[[Mapping[str, Any]], bool] | None = getattr(route.ctx, "applies", None)
        if applies is None or applies(params):
            found.append(method)
    return found


def _translate(exc: BaseException, request: Request | None) -> Problem:
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, RequestCancelled):
        return problems.client_closed_request()
    if isinstance(exc, NotFound):
        return problems.not_found()
    if isinstance(exc, MethodNotAllowed):
        return problems.method_not_allowed(allowed_methods(request) if request else ())
    if isinstance(exc, PayloadTooLarge):
        limit = request.app.config.REQUEST_MAX_SIZE if request else 0
        return problems.body_too_large(int(limit))
    if isinstance(exc, BadRequest | HeaderExpectationFailed | RangeNotSatisfiable):
        return Problem(400, "bad-request", str(exc) or "bad request")
    if isinstance(exc, SanicException) and 400 <= exc.status_code < 500:
        return Problem(exc.status_code, "bad-request", str(exc))
    return problems.internal_error()


def install(
    app: App,
    *,
    service: str,
    settings: ServiceSettings,
    readiness: ReadinessCheck,
    openapi: Callable[[], dict[str, Any]],
    refusal: Callable[[BaseException], Problem | None],
    span_exporter: SpanExporter | None = None,
) -> None:
    """Wire the shared behaviour into ``app``; call from the service's ``create_app``.

    ``refusal`` is the service's one table from its store's refusals to problems (None
    for any other exception). ``span_exporter`` forces tracing on into it (tests);
    otherwise the OTEL_* variables decide (services.common.tracing).
    """
    app.config.REQUEST_MAX_SIZE = settings.max_body_bytes
    # Sanic counts it from the end of before_server_stop, i.e. after _drain below.
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = float(settings.graceful_seconds)
    app.ctx.settings = settings
    app.ctx.health = Health()
    # Never blocks the event loop on a JWKS fetch: _begin awaits the fetch a token needs.
    verifier = TokenVerifier.for_service(settings, service, blocking=False)
    app.ctx.verifier = CachingVerifier(verifier)
    observer = RequestObserver(settings.cors_allowed_origins)
    compressor = Compressor(settings.gzip_min_bytes, settings.gzip_level)

    @app.before_server_start
    async def _metrics(app: App) -> None:
        # Created per worker, after the fork: the multiprocess files are per pid.
        app.ctx.metrics = Metrics(service, settings.version, settings.revision)
        # Also per worker: the span processor's thread must not cross a fork.
        app.ctx.tracing = observer.tracing = tracing.start(
            service, settings.version, exporter=span_exporter
        )

    @app.before_server_start
    async def _keys(app: App) -> None:
        # Fetch the JWKS (if any) per worker at start, waiting at most its timeout: a
        # JWKS that is down delays start-up by that much, never prevents it.
        fetch = verifier.warm()
        if fetch is not None:
            await asyncio.wait(
                [asyncio.ensure_future(asyncio.wrap_future(fetch))], timeout=verifier.key_timeout
            )

    @app.before_server_stop
    async def _drain(app: App) -> None:
        # Readiness fails first; keep serving while load balancers notice, then drain.
        app.ctx.health.start_draining()
        if settings.drain_seconds:
            await asyncio.sleep(settings.drain_seconds)

    @app.after_server_stop
    async def _dead(app: App) -> None:
        mark_worker_dead(os.getpid())
        if getattr(app.ctx, "tracing", None) is not None:
            app.ctx.tracing.shutdown()  # flush the spans still buffered

    async def _begin(request: Request) -> HTTPResponse | None:
        metrics: Metrics | None = getattr(request.app.ctx, "metrics", None)
        request.ctx.exchange, preflight = observer.begin(
            request.method,
            request.headers.get(HEADER),
            request.headers.get("origin"),
            metrics,
            path=request.path,
            headers=request.headers,
        )
        if preflight:
            return HTTPResponse(status=204, headers=preflight)
        authorization = request.headers.get("authorization")
        if authorization:
            await request.app.ctx.verifier.prepare(authorization)
        return None

    async def _finish(request: Request, response: BaseHTTPResponse) -> HTTPResponse | None:
        replaced = await _outgoing(request, response, compressor)
        answer = replaced or response
        answer.headers.update(
            vary_merged(
                answer.headers.get("vary"),
                observer.finish(
                    getattr(request.ctx, "exchange", None),
                    method=request.method,
                    origin=request.headers.get("origin"),
                    route=request.uri_template,
                    status=answer.status,
                    metrics=getattr(request.app.ctx, "metrics", None),
                ),
            )
        )
        return replaced

    app.register_middleware(_begin, "request", priority=100)
    app.register_middleware(_finish, "response", priority=100)

    async def _on_error(request: Request, exc: BaseException) -> HTTPResponse:
        refused = refusal(exc)
        if refused is not None:
            return problem_response(refused)
        problem = _translate(exc, request)
        if problem.status >= 500 and not isinstance(exc, Problem):
            logger.error("unhandled error", exc_info=exc)
        return problem_response(problem)

    # RequestCancelled (the client went away) is a CancelledError, not an Exception.
    app.error_handler.add(Exception, _on_error)
    app.error_handler.add(RequestCancelled, _on_error)
    _probes(app, service, readiness, openapi)


async def _outgoing(
    request: Request, response: BaseHTTPResponse, compressor: Compressor
) -> HTTPResponse | None:
    """Apply :func:`services.common.outgoing.plan` to ``response``.

    Returns the answer that replaces ``response`` (a 304), or None when ``response``
    itself goes out (compressed in place when the plan says so). Streamed answers (the
    export) have no body here and pass untouched: they encode themselves.
    """
    body = response.body if isinstance(response, HTTPResponse) else None
    headers = response.headers
    decided = plan(
        Asked(
            request.method,
            request.headers.get("if-none-match"),
            request.headers.get("accept-encoding"),
        ),
        Answer(
            response.status,
            len(body) if body else None,
            etag=headers.get("etag"),
            # Sanic keeps the media type beside the headers until it sends them.
            content_type=response.content_type or headers.get("content-type"),
            content_encoding=headers.get("content-encoding"),
            vary=headers.get("vary"),
        ),
        compressor,
    )
    if decided.action is Action.NOT_MODIFIED:
        return HTTPResponse(status=304, headers=dict(decided.headers))
    headers.update(decided.headers)
    if body and decided.action is Action.GZIP:
        if len(body) >= OFFLOAD_BYTES:  # zlib frees the GIL: keep the loop serving
            response.body = await asyncio.to_thread(gzip_body, body, compressor.level)
        else:
            response.body = gzip_body(body, compressor.level)
    return None


def _probes(
    app: App, service: str, readiness: ReadinessCheck, openapi: Callable[[], dict[str, Any]]
) -> None:
    """The declared probes: ``/livez``, ``/readyz``, ``/metrics`` and ``/openapi.json``
    (built on first ask)."""

    async def livez(request: Request) -> HTTPResponse:
        return json(LIVE_BODY)

    async def readyz(request: Request) -> HTTPResponse:
        status, body = request.app.ctx.health.readiness(await readiness(request.app))
        return json(body, status=status)

    async def metrics(request: Request) -> HTTPResponse:
        payload, content_type = request.app.ctx.metrics.render()
        return raw(payload, content_type=content_type)

    document: dict[str, Any] = {}

    async def openapi_route(request: Request) -> HTTPResponse:
        if not document:
            document.update(openapi())
        return json(document)

    handlers = {"livez": livez, "readyz": readyz, "metrics": metrics, "openapi": openapi_route}
    for probe in PROBES:
        name = route_name(probe)
        read_route(app, probe.path, name=name)(handlers[name])
    if app.ctx.settings.api_docs:
        _docs(app, service, openapi_route)


def _docs(
    app: App, service: str, openapi_route: Callable[[Request], Awaitable[HTTPResponse]]
) -> None:
    """``/docs`` and ``/docs/<service>/…``: Swagger UI from the image (services.common.apidocs)."""
    base = apidocs.prefix(service)
    html = apidocs.page(service, f"Strata {service}")

    async def home(request: Request) -> HTTPResponse:
        return HTTPResponse(status=308, headers={"Location": base})

    async def docs_page(request: Request) -> HTTPResponse:
        return raw(html, content_type="text/html; charset=utf-8", headers=apidocs.PAGE_HEADERS)

    read_route(app, "/docs", name="docs_home")(home)
    read_route(app, base, name="docs_page")(docs_page)
    read_route(app, base + "openapi.json", name="docs_openapi")(openapi_route)
    for index, file_name in enumerate(apidocs.asset_names()):

        async def file(request: Request, name: str = file_name) -> HTTPResponse:
            found = apidocs.asset(name)
            gzip_ok = accepts_gzip(request.headers.get("accept-encoding"))
            body = found.gzipped if gzip_ok else found.body
            return raw(body, content_type=found.content_type, headers=found.headers(gzip_ok))

        read_route(app, base + file_name, name=f"docs_asset_{index}")(file)


def check_with_timeout(
    timeout: float,
) -> Callable[[Callable[[], Awaitable[object]]], Awaitable[str]]:
    """Run a store ping with a deadline; ``"ok"`` or a short error text (for ``/readyz``)."""

    async def run(ping: Callable[[], Awaitable[object]]) -> str:
        try:
            await asyncio.wait_for(ping(), timeout)
        except TimeoutError:
            return f"timeout after {timeout}s"
        except Exception as exc:  # any store failure means not ready
            return type(exc).__name__
        return "ok"

    return run
