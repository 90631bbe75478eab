"""Flask glue: request ids, the per-request log line, metrics, problem+json, CORS, probes.

The Flask counterpart of ``services.common.sanic_support``; everything it renders
comes from ``services.common``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from services.common import problems
from services.common.auth import Principal, TokenVerifier
from services.common.health import LIVE_BODY, Health
from services.common.jsonbody import dumps, parse_json
from services.common.metrics import Metrics
from services.common.observe import RequestObserver
from services.common.problems import PROBLEM_CONTENT_TYPE, Problem
from services.common.requestid import HEADER
from services.common.settings import ServiceSettings

logger = logging.getLogger("strata.http")


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON response serialised with orjson (problem+json for error statuses)."""
    mimetype = PROBLEM_CONTENT_TYPE if status >= 400 else "application/json"
    return Response(dumps(body), status=status, headers=dict(headers or {}), mimetype=mimetype)


def problem_response(problem: Problem) -> Response:
    """Render a :class:`Problem`."""
    return json_response(problem.to_dict(), problem.status, problem.headers)


def json_body() -> Any:
    """The request's JSON body (400 unparseable, 413 too large, 415 not JSON)."""
    return parse_json(request.get_data(cache=True), request.headers.get("Content-Type"))


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
    verifier: TokenVerifier = g.strata_verifier
    who = verifier.verify_header(request.headers.get("Authorization"))
    who.require(*scopes)
    g.strata_principal = who
    return who


def install(
    app: Flask,
    *,
    settings: ServiceSettings,
    metrics: Metrics,
    health: Health,
    readiness: Callable[[], Mapping[str, str]],
    store_problem: Callable[[Exception], Problem | None],
    openapi: Callable[[], dict[str, Any]],
) -> None:
    """Wire the shared behaviour into ``app``."""
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    verifier = TokenVerifier.for_service(settings, settings.service_name)
    observer = RequestObserver(settings.cors_allowed_origins)

    @app.before_request
    def _begin() -> Response | None:
        g.strata_verifier = verifier
        g.strata_exchange, preflight = observer.begin(
            request.method, request.headers.get(HEADER), request.headers.get("Origin"), metrics
        )
        return Response(status=204, headers=preflight) if preflight else None

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers.update(
            observer.finish(
                g.pop("strata_exchange", None),
                method=request.method,
                origin=request.headers.get("Origin"),
                route=request.url_rule.rule if request.url_rule is not None else None,
                status=response.status_code,
                metrics=metrics,
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
            return problem_response(problems.body_too_large(settings.max_body_bytes))
        if status < 500:
            return problem_response(Problem(status, "bad-request", exc.description))
        return problem_response(problems.internal_error())

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        mapped = store_problem(exc)
        if mapped is not None:
            logger.warning("store unavailable: %s", type(exc).__name__)
            return problem_response(mapped)
        logger.error("unhandled error", exc_info=exc)
        return problem_response(problems.internal_error())

    @app.get("/livez")
    def livez() -> Response:
        return json_response(LIVE_BODY)

    @app.get("/readyz")
    def readyz() -> Response:
        status, body = health.readiness(readiness())
        return Response(dumps(body), status=status, mimetype="application/json")

    @app.get("/metrics")
    def metrics_route() -> Response:
        payload, content_type = metrics.render()
        return Response(payload, content_type=content_type)

    document: dict[str, Any] = {}

    @app.get("/openapi.json")
    def openapi_route() -> Response:
        if not document:
            document.update(openapi())
        return json_response(document)
