"""Flask glue: request ids, the per-request log line, metrics, problem+json, CORS, probes.

The Flask counterpart of ``services.common.sanic_support``; everything it renders
comes from ``services.common``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import (
    ClientDisconnected,
    HTTPException,
    MethodNotAllowed,
    RequestEntityTooLarge,
)

from services.common import apidocs, problems
from services.common.auth import Principal, TokenVerifier, unauthorized
from services.common.cache import CachingVerifier
from services.common.compression import Compressor, accepts_gzip, gzip_body, vary_merged
from services.common.health import LIVE_BODY, Health
from services.common.jsonbody import dumps, parse_json
from services.common.metrics import Metrics
from services.common.observe import RequestObserver
from services.common.outgoing import Action, Answer, Asked, plan
from services.common.probes import PROBES, route_name
from services.common.problems import PROBLEM_CONTENT_TYPE, Problem
from services.common.requestid import HEADER
from services.common.settings import ServiceSettings
from services.common.tracing import Tracing

logger = logging.getLogger("strata.http")
#: The audit actor and idempotency subject columns are VARCHAR(255).
MAX_SUBJECT_LENGTH = 255


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON response serialised with orjson (problem+json for error statuses)."""
    mimetype = PROBLEM_CONTENT_TYPE if status >= 400 else "application/json"
    return Response(dumps(body), status=status, headers=dict(headers or {}), mimetype=mimetype)


def problem_response(problem: Problem) -> Response:
    """Render a :class:`Problem`."""
    return json_response(problem.to_dict(), problem.status, problem.headers)


def too_large(limit: int) -> Problem:
    """413, closing the connection: the rest of the body is never read."""
    problem = problems.body_too_large(limit)
    problem.headers["Connection"] = "close"  # the worker turns this into a real close
    return problem


def request_body() -> bytes:
    """The whole body, or 413 when it is over the limit, with or without Content-Length.

    Werkzeug stops reading a chunked body silently at ``MAX_CONTENT_LENGTH`` (a longer
    one was truncated, then parsed). Reading one byte past the limit tells them apart.
    """
    limit: int = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None:
        request.max_content_length = limit + 1
    body = request.get_data(cache=True)
    if len(body) > limit:
        raise too_large(limit)
    if request.content_length is not None and len(body) < request.content_length:
        # gunicorn ends the body stream quietly when the peer hangs up mid-body.
        raise ClientDisconnected()
    return body


def json_body() -> Any:
    """The request's JSON body (400 unparseable, 413 too large, 415 not JSON)."""
    body = request_body()
    try:
        return parse_json(body, request.headers.get("Content-Type"))
    except Problem as problem:
        if problem.slug == "malformed-json":
            _require_utf8(body)
        raise


def json_object() -> dict[str, Any]:
    """The request's JSON body, which must be an object (422 otherwise)."""
    payload = json_body()
    if not isinstance(payload, dict):
        raise problems.validation_failed(
            [{"loc": ["body"], "msg": "must be an object"}], "request body must be a JSON object"
        )
    return payload


def _require_utf8(body: bytes) -> None:
    """400 saying so when the body is not UTF-8 (the parser's own words mislead)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise problems.bad_json(
            f"request body is not valid UTF-8 (byte 0x{body[exc.start]:02x} at "
            f"position {exc.start}); JSON must be sent as UTF-8"
        ) from None


def path_uuid(value: str, name: str) -> uuid.UUID:
    """Parse a UUID path segment; 422 naming the parameter when it is not one."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise problems.validation_failed(
            [{"loc": ["path", name], "msg": "must be a UUID"}], "invalid path parameter"
        ) from None


def principal(*scopes: str) -> Principal:
    """The caller's verified token, which must carry every scope in ``scopes``."""
    verifier: CachingVerifier = g.strata_verifier
    who = verifier.verify_header(request.headers.get("Authorization"))
    check_subject(who.subject)
    who.require(*scopes)
    return who


def check_subject(subject: str) -> None:
    """401 unless the token subject can be stored as the audit actor and idempotency owner.

    Those columns hold 1..255 characters of UTF-8 text without NUL.
    """
    if not 1 <= len(subject) <= MAX_SUBJECT_LENGTH or "\x00" in subject:
        raise unauthorized(f"token subject must be 1..{MAX_SUBJECT_LENGTH} characters, no NUL")
    try:
        subject.encode("utf-8")
    except UnicodeEncodeError:
        raise unauthorized("token subject is not valid Unicode text") from None


def _outgoing(response: Response, compressor: Compressor) -> Response:
    """Apply :func:`services.common.outgoing.plan` to ``response`` (the Flask side).

    The Flask counterpart of ``sanic_support._outgoing``. A streamed answer has no body
    here and passes untouched (it may still become a 304).
    """
    streamed = response.is_streamed or response.direct_passthrough
    body = None if streamed else response.get_data()
    headers = response.headers
    decided = plan(
        Asked(
            request.method,
            request.headers.get("If-None-Match"),
            request.headers.get("Accept-Encoding"),
        ),
        Answer(
            response.status_code,
            len(body) if body else None,
            etag=headers.get("ETag"),
            content_type=headers.get("Content-Type"),
            content_encoding=headers.get("Content-Encoding"),
            vary=headers.get("Vary"),
        ),
        compressor,
    )
    if decided.action is Action.NOT_MODIFIED:
        return Response(status=304, headers=dict(decided.headers))
    headers.update(decided.headers)
    if body and decided.action is Action.GZIP:
        response.set_data(gzip_body(body, compressor.level))
    return response


def install(
    app: Flask,
    *,
    settings: ServiceSettings,
    metrics: Metrics,
    health: Health,
    readiness: Callable[[], Mapping[str, str]],
    store_problem: Callable[[Exception], Problem | None],
    openapi: Callable[[], dict[str, Any]],
    describe_error: Callable[[BaseException], dict[str, Any]],
    tracing: Tracing | None = None,
) -> None:
    """Wire the shared behaviour into ``app``.

    ``describe_error`` gives the log fields of an unexpected error (without data it holds).
    """
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    # Verified tokens are remembered until they expire or their key is withdrawn: a
    # signature check per request was a measurable share of a read (issue 15).
    verifier = CachingVerifier(TokenVerifier.for_service(settings, settings.service_name))
    observer = RequestObserver(settings.cors_allowed_origins)
    observer.tracing = tracing
    compressor = Compressor(settings.gzip_min_bytes, settings.gzip_level)

    @app.before_request
    def _begin() -> Response | None:
        g.strata_verifier = verifier
        g.strata_exchange, preflight = observer.begin(
            request.method,
            request.headers.get(HEADER),
            request.headers.get("Origin"),
            metrics,
            path=request.path,
            headers=request.headers,  # type: ignore[arg-type]  # Werkzeug's, a str mapping
        )
        return Response(status=204, headers=preflight) if preflight else None

    @app.after_request
    def _finish(response: Response) -> Response:
        response = _outgoing(response, compressor)
        response.headers.update(
            vary_merged(
                response.headers.get("Vary"),
                observer.finish(
                    g.pop("strata_exchange", None),
                    method=request.method,
                    origin=request.headers.get("Origin"),
                    route=request.url_rule.rule if request.url_rule is not None else None,
                    status=response.status_code,
                    metrics=metrics,
                ),
            )
        )
        return response

    @app.errorhandler(Problem)
    def _problem(exc: Problem) -> Response:
        return problem_response(exc)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        if status == 404:
            return problem_response(problems.not_found())
        if isinstance(exc, MethodNotAllowed):
            return problem_response(problems.method_not_allowed(exc.valid_methods or ()))
        if isinstance(exc, RequestEntityTooLarge):
            return problem_response(too_large(settings.max_body_bytes))
        if isinstance(exc, ClientDisconnected):
            # Recorded as 499 (metrics, log line), like the Sanic services: not a 4xx/5xx
            # of ours, and nobody is left to read the answer.
            return problem_response(problems.client_closed_request())
        if status < 500:
            return problem_response(Problem(status, "bad-request", exc.description))
        return problem_response(problems.internal_error())

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        mapped = store_problem(exc)
        if mapped is not None:
            logger.warning("store unavailable: %s", type(exc).__name__)
            return problem_response(mapped)
        logger.error("unhandled error", extra=describe_error(exc))
        return problem_response(problems.internal_error())

    def livez() -> Response:
        return json_response(LIVE_BODY)

    def readyz() -> Response:
        status, body = health.readiness(readiness())
        return Response(dumps(body), status=status, mimetype="application/json")

    def metrics_route() -> Response:
        payload, content_type = metrics.render()
        return Response(payload, content_type=content_type)

    document: dict[str, Any] = {}

    def openapi_route() -> Response:
        if not document:
            document.update(openapi())
        return json_response(document)

    views = {"livez": livez, "readyz": readyz, "metrics": metrics_route, "openapi": openapi_route}
    for probe in PROBES:  # declared once for every service
        app.add_url_rule(probe.path, view_func=views[route_name(probe)], methods=[probe.method])
    if settings.api_docs:
        _docs(app, settings.service_name, openapi_route)


def _docs(app: Flask, service: str, openapi_route: Callable[[], Response]) -> None:
    """``/docs`` and ``/docs/<service>/…``: Swagger UI from the image (services.common.apidocs)."""
    base = apidocs.prefix(service)
    html = apidocs.page(service, f"Strata {service}")

    def home() -> Response:
        return Response(status=308, headers={"Location": base})

    def docs_page() -> Response:
        return Response(html, mimetype="text/html", headers=apidocs.PAGE_HEADERS)

    def docs_file(name: str) -> Response:
        found = apidocs.asset(name)
        gzip_ok = accepts_gzip(request.headers.get("Accept-Encoding"))
        body = found.gzipped if gzip_ok else found.body
        return Response(body, content_type=found.content_type, headers=found.headers(gzip_ok))

    app.add_url_rule("/docs", "docs_home", home, methods=["GET"])
    app.add_url_rule(base, "docs_page", docs_page, methods=["GET"])
    app.add_url_rule(base + "openapi.json", "docs_openapi", openapi_route, methods=["GET"])
    for index, name in enumerate(apidocs.asset_names()):
        app.add_url_rule(
            base + name, f"docs_asset_{index}", docs_file, methods=["GET"], defaults={"name": name}
        )
