"""Sanic glue for declared endpoints: each registered once at start-up behind its scopes.

The handler Sanic calls checks the route's ``applies`` (405 otherwise), then the token
(401/403), then calls the declared handler with the request, its path parameters and its
:class:`~services.common.endpoint.Body` if it declares one. GET routes answer HEAD too.
Only imported by Sanic services.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any

from sanic import HTTPResponse, Request

from services.common.endpoint import Body, Endpoint
from services.common.jsonbody import parse_json
from services.common.problems import method_not_allowed
from services.common.query import check_query
from services.common.sanic_support import READ_METHODS, App, allowed_methods, principal

Handler = Callable[..., Coroutine[Any, Any, HTTPResponse | None]]


def mount(
    app: App, endpoints: Iterable[Endpoint], segments: Mapping[str, str] | None = None
) -> None:
    """Register every endpoint on ``app``.

    ``{name}`` in a path becomes ``<name:str>``, or ``segments[name]`` when given (e.g.
    ``<key:path>``); an endpoint's own ``rule`` wins over both.
    """
    for endpoint in endpoints:
        op = endpoint.operation
        rule = endpoint.rule or re.sub(
            r"{(\w+)}", lambda m: (segments or {}).get(m[1], f"<{m[1]}:str>"), op.path
        )
        reads = op.method == "GET"
        app.route(
            rule,
            methods=READ_METHODS if reads else (op.method,),
            name=endpoint.name,  # a GET's body is read and ignored, as read_route says
            ctx_endpoint=endpoint,
            ctx_applies=endpoint.applies,
            **endpoint.options,
        )(_handler(endpoint))


def query(request: Request) -> None:
    """422 for a query parameter the endpoint does not declare, or one given twice."""
    check_query(request.get_args(keep_blank_values=True), declared(request).query)


def declared(request: Request) -> Endpoint:
    """The declaration of the endpoint serving ``request`` (called by its handler)."""
    route = request.route
    assert route is not None, "only a routed request has an endpoint"
    endpoint: Endpoint = route.ctx.endpoint
    return endpoint


def _handler(endpoint: Endpoint) -> Handler:
    handler, scopes, model = endpoint.handler, endpoint.operation.scopes, endpoint.body
    applies = endpoint.applies

    async def handle(request: Request, **args: Any) -> HTTPResponse | None:
        if applies is not None and not applies(args):
            raise method_not_allowed(allowed_methods(request))
        if scopes:
            principal(request, *scopes)
        if model is not None:
            args["body"] = Body(model, lambda: _json(request))
        response: HTTPResponse | None = await handler(request, **args)
        return response

    handle.__name__ = handle.__qualname__ = endpoint.name
    handle.__doc__ = endpoint.handler.__doc__
    return handle


def _json(request: Request) -> Any:
    # No Content-Type header is read as JSON (Sanic's default would say octet-stream).
    return parse_json(request.body, request.headers.get("content-type"))
