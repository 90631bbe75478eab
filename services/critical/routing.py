"""Flask glue for declared endpoints: each registered once at start-up behind its scopes.

The view checks the token (401/403), then calls the handler with its path parameters,
the caller (``who``) if it takes one, and its :class:`~services.common.endpoint.Body`
if it declares one. Everything the view needs is fixed when the app is built.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, current_app, request

from services.common.endpoint import Body, Endpoint
from services.critical.web import json_object, principal

EXTENSION = "strata.endpoints"


def mount(app: Flask, endpoints: Iterable[Endpoint]) -> None:
    """Register every endpoint on ``app`` (Flask rule ``<name>`` for ``{name}``)."""
    registry: dict[str, Endpoint] = {}
    for endpoint in endpoints:
        rule = endpoint.rule or re.sub(r"{(\w+)}", r"<\1>", endpoint.operation.path)
        methods = [endpoint.operation.method]
        app.add_url_rule(rule, endpoint.name, _view(endpoint), methods=methods)
        registry[endpoint.name] = endpoint
    app.extensions[EXTENSION] = registry


def declared() -> Endpoint:
    """The declaration of the endpoint serving this request."""
    endpoint: Endpoint = current_app.extensions[EXTENSION][request.endpoint]
    return endpoint


def _view(endpoint: Endpoint) -> Callable[..., Response]:
    handler, scopes, model = endpoint.handler, endpoint.operation.scopes, endpoint.body
    wants_caller = endpoint.wants_caller

    def view(**args: Any) -> Response:
        who = principal(*scopes)
        if wants_caller:
            args["who"] = who
        if model is not None:
            args["body"] = Body(model, json_object)
        response: Response = handler(**args)
        return response

    view.__name__ = view.__qualname__ = endpoint.name
    view.__doc__ = handler.__doc__
    return view
