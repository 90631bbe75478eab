"""What an endpoint is, for its route and its OpenAPI entry: :class:`Operation` and :class:`Param`.

Pure data, no framework: the Flask and Sanic glue route from it, and
:mod:`services.common.openapi` describes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class Param:
    """A path, query or header parameter."""

    name: str
    location: str  # "path" | "query" | "header"
    schema: dict[str, Any]
    required: bool = False
    description: str = ""
    #: Schema keywords whose value is a setting of the service: (keyword, settings attribute).
    bounds: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Operation:
    """One endpoint: method, path template (``{name}`` style) and its shapes."""

    method: str
    path: str
    summary: str
    scopes: tuple[str, ...] = ()
    request: type[BaseModel] | None = None
    request_schema: dict[str, Any] | None = None
    request_content_type: str = "application/json"
    response: type[BaseModel] | None = None
    response_schema: dict[str, Any] | None = None
    response_content_type: str = "application/json"
    #: Every success body by media type, when there is more than one (e.g. an export's
    #: NDJSON and Parquet); wins over ``response_schema``/``response_content_type``.
    response_content: dict[str, dict[str, Any]] | None = None
    #: What error statuses answer with (a problem, unless the operation says otherwise).
    error_schema: dict[str, Any] | None = None
    error_content_type: str = "application/problem+json"
    status: int = 200
    errors: tuple[int, ...] = ()
    params: tuple[Param, ...] = field(default_factory=tuple)
    #: Other success statuses answered with the same body (e.g. 200 beside 201).
    also: tuple[int, ...] = ()
    #: Every accepted request body by media type, when there is more than one.
    request_content: dict[str, dict[str, Any]] | None = None
    #: Headers of the success response (e.g. ``ETag``, ``Location``), as plain strings.
    response_headers: tuple[str, ...] = ()
    #: Headers of the success response with their OpenAPI descriptions.
    headers: Mapping[str, Any] | None = None
    #: The problem types (slugs) it may answer with, when it names them itself.
    problems: tuple[str, ...] = ()
    #: Headers of some error answers (e.g. a replayed refusal's ``Idempotent-Replayed``).
    error_headers: Mapping[int, Mapping[str, Any]] | None = None
    #: The OpenAPI ``operationId`` (camelCase of the handler's name): generated clients
    #: name their functions by it.
    operation_id: str = ""
