"""Build an OpenAPI 3.1 document from pydantic models and a list of operations.

Each service describes its endpoints once as :class:`Operation` values; request and
response schemas come from the same pydantic models that validate requests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
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
    status: int = 200
    errors: tuple[int, ...] = ()
    params: tuple[Param, ...] = field(default_factory=tuple)


def _path_params(path: str, declared: Sequence[Param]) -> list[Param]:
    names = {p.name for p in declared if p.location == "path"}
    found = [
        Param(name, "path", {"type": "string"}, required=True)
        for name in re.findall(r"{([^}]+)}", path)
        if name not in names
    ]
    return [*found, *declared]


def build_openapi(
    *, title: str, version: str, operations: Iterable[Operation], description: str = ""
) -> dict[str, Any]:
    """The OpenAPI document for ``operations``."""
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
        if body_schema is not None:
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
        entry["responses"][str(op.status)] = ok
        errors = set(op.errors)
        if op.scopes:
            entry["security"] = [{"bearer": list(op.scopes)}]
            errors |= {401, 403}
        for status in sorted(errors):
            entry["responses"][str(status)] = {
                "description": "problem",
                "content": {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                },
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
