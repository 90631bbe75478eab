"""Build an OpenAPI 3.1 document from pydantic models and a list of operations.

Each service describes its endpoints once as :class:`Operation` values; request and
response schemas come from the same pydantic models that validate requests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from services.common.problems import TYPE_PREFIX

_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; `type` is `urn:strata:problem:<slug>`.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "pattern": "^urn:strata:problem:[a-z0-9-]+$"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Param:
    """A path, query or header parameter."""

    name: str
    location: str  # "path" | "query" | "header"
    schema: dict[str, Any]
    required: bool = False
    description: str = ""


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
    #: Headers of the success response (e.g. ``ETag``, ``Location``).
    response_headers: tuple[str, ...] = ()


# Headers every answer of that status carries.
_ERROR_HEADERS = {401: "WWW-Authenticate", 503: "Retry-After"}
_STRING = {"schema": {"type": "string"}}


# Headers every answer of that status carries.
_ERROR_HEADERS = {401: "WWW-Authenticate", 503: "Retry-After"}
_STRING = {"schema": {"type": "string"}}


def _path_params(path: str, declared: Sequence[Param]) -> list[Param]:
    names = {p.name for p in declared if p.location == "path"}
    found = [
        Param(name, "path", {"type": "string"}, required=True)
        for name in re.findall(r"{([^}]+)}", path)
        if name not in names
    ]
    return [*found, *declared]


def _problems(status: int, types: Mapping[str, tuple[int, str]] | None) -> dict[str, Any]:
    """The description (the slugs of ``status``) and headers of a problem answer."""
    described = [
        f"`{slug}`: {meaning}" for slug, (s, meaning) in (types or {}).items() if s == status
    ]
    response: dict[str, Any] = {"description": "; ".join(described) if described else "problem"}
    if status in _ERROR_HEADERS:
        response["headers"] = {_ERROR_HEADERS[status]: _STRING}
    return response


def build_openapi(
    *,
    title: str,
    version: str,
    operations: Iterable[Operation],
    description: str = "",
    problem_types: Mapping[str, tuple[int, str]] | None = None,
) -> dict[str, Any]:
    """The OpenAPI document for ``operations``.

    With ``problem_types`` (slug -> (status, meaning)) every problem answer lists the
    slugs of its status, and a problem's ``type`` must be one of them.
    """
    ops = list(operations)
    models: set[type[BaseModel]] = set()
    for op in ops:
        models.update(m for m in (op.request, op.response) if m is not None)
    ordered = sorted(models, key=lambda m: m.__name__)
    _, defs = models_json_schema(
        [(m, "validation") for m in ordered], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    schemas["Problem"] = _PROBLEM_SCHEMA
    if problem_types:
        problem = {**_PROBLEM_SCHEMA, "properties": dict(_PROBLEM_SCHEMA["properties"])}
        problem["properties"]["type"] = {"enum": sorted(TYPE_PREFIX + s for s in problem_types)}
        schemas["Problem"] = problem

    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        entry: dict[str, Any] = {
            "summary": op.summary,
            "operationId": f"{op.method.lower()}_{re.sub(r'[^a-zA-Z0-9]+', '_', op.path)}",
            "parameters": [
                {
                    "name": p.name,
                    "in": p.location,
                    "required": p.required or p.location == "path",
                    "schema": p.schema,
                    **({"description": p.description} if p.description else {}),
                }
                for p in _path_params(op.path, op.params)
            ],
            "responses": {},
        }
        body_schema = op.request_schema or (
            {"$ref": f"#/components/schemas/{op.request.__name__}"} if op.request else None
        )
        if op.request_content is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {media: {"schema": s} for media, s in op.request_content.items()},
            }
        elif body_schema is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {op.request_content_type: {"schema": body_schema}},
            }
        out_schema = op.response_schema or (
            {"$ref": f"#/components/schemas/{op.response.__name__}"} if op.response else None
        )
        ok: dict[str, Any] = {"description": "success"}
        if out_schema is not None and op.status != 204:
            ok["content"] = {op.response_content_type: {"schema": out_schema}}
        if op.response_headers:
            ok["headers"] = dict.fromkeys(op.response_headers, _STRING)
        for status in (op.status, *op.also):
            entry["responses"][str(status)] = ok
        errors = set(op.errors)
        if op.scopes:
            entry["security"] = [{"bearer": list(op.scopes)}]
            errors |= {401, 403}
        else:
            entry["security"] = []
        problem = op.error_schema or {"$ref": "#/components/schemas/Problem"}
        for status in sorted(errors):
            described = (
                _problems(status, problem_types)
                if op.error_schema is None
                else {"description": "the body says what failed"}
            )
            entry["responses"][str(status)] = {
                **described,
                "content": {op.error_content_type: {"schema": problem}},
            }
        paths.setdefault(op.path, {})[op.method.lower()] = entry

    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
