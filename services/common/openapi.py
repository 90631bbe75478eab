"""Build a service's OpenAPI 3.1 document from its declarations, with nothing kept by hand.

Each endpoint is declared once as an :class:`Operation` (beside its handler, see
:mod:`services.common.endpoint`; the probes in :mod:`services.common.probes`); request and
response schemas come from the same pydantic models that validate requests. What a
service says about itself besides its endpoints is one :class:`ServiceInfo`.

Error answers are described one of two ways. An operation that lists its problem types
(``problems``) gets, per status, a response naming exactly those slugs, so a fuzzer
checking response schemas also checks that no undocumented problem escapes. Otherwise
each problem answer names every slug of its status in the service's catalogue, and the
``Problem`` schema admits exactly the catalogue.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from services.common.operation import Operation, Param
from services.common.probes import PROBES, route_name
from services.common.problems import PROBLEM_CONTENT_TYPE as PROBLEM_MEDIA
from services.common.problems import TYPE_PREFIX
from services.common.settings import ServiceSettings

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
class ServiceInfo:
    """What a service's document says besides its endpoints (the version is a setting)."""

    title: str
    description: str
    #: Every problem type the service answers: slug -> (status, meaning).
    problem_types: Mapping[str, tuple[int, str]]
    #: Headers documented on every answer (e.g. ``X-Request-ID``).
    every_response: Mapping[str, Any] = field(default_factory=dict)


_STRING: dict[str, Any] = {"schema": {"type": "string"}}
# Headers every answer of that status carries, as each description style documents them
# (the catalogue style, ml's and cache's, has never listed 403's and 405's: their served
# documents stay as they were).
_CATALOGUE_HEADERS = {401: "WWW-Authenticate", 429: "Retry-After", 503: "Retry-After"}
_NAMED_HEADERS = {
    401: "WWW-Authenticate",
    403: "WWW-Authenticate",
    405: "Allow",
    503: "Retry-After",
}


def _path_params(path: str, declared: Sequence[Param]) -> list[Param]:
    names = {p.name for p in declared if p.location == "path"}
    found = [
        Param(name, "path", {"type": "string"}, required=True)
        for name in re.findall(r"{([^}]+)}", path)
        if name not in names
    ]
    return [*found, *declared]


def _catalogued(status: int, types: Mapping[str, tuple[int, str]]) -> dict[str, Any]:
    """The description (every slug of ``status``) and headers of a problem answer."""
    described = [f"`{slug}`: {meaning}" for slug, (s, meaning) in types.items() if s == status]
    response: dict[str, Any] = {"description": "; ".join(described) if described else "problem"}
    if status in _CATALOGUE_HEADERS:
        response["headers"] = {_CATALOGUE_HEADERS[status]: _STRING}
    return response


def _named(slugs: list[str], types: Mapping[str, tuple[int, str]]) -> dict[str, Any]:
    """A problem answer that admits exactly ``slugs`` (all of one status)."""
    status = types[slugs[0]][0]
    response: dict[str, Any] = {
        "description": "; ".join(f"`{s}`: {types[s][1]}" for s in slugs),
        "content": {
            PROBLEM_MEDIA: {
                "schema": {
                    "allOf": [{"$ref": "#/components/schemas/Problem"}],
                    "properties": {
                        "type": {"enum": [TYPE_PREFIX + s for s in slugs]},
                        "status": {"const": status},
                    },
                }
            }
        },
    }
    if status in _NAMED_HEADERS:
        response["headers"] = {_NAMED_HEADERS[status]: _STRING}
    return response


def by_status(slugs: Iterable[str], types: Mapping[str, tuple[int, str]]) -> dict[int, list[str]]:
    """``slugs`` grouped by their status in ``types``, in the order given."""
    grouped: dict[int, list[str]] = {}
    for slug in slugs:
        grouped.setdefault(types[slug][0], []).append(slug)
    return grouped


#: Every GET answering with an ETag takes it back (the glue answers 304 for both frameworks).
IF_NONE_MATCH = Param(
    "If-None-Match",
    "header",
    {"type": "string"},
    description="ETags the client holds; the current one (compared weakly) or `*` answers 304",
)


def conditional(op: Operation) -> bool:
    """Whether ``op`` is a GET whose answer carries an ETag (so it may answer 304)."""
    named = {*op.response_headers, *(op.headers or {})}
    return op.method == "GET" and any(h.lower() == "etag" for h in named)


def _parameters(op: Operation, settings: ServiceSettings) -> list[dict[str, Any]]:
    declared = _path_params(op.path, op.params)
    if conditional(op):
        declared = [*declared, IF_NONE_MATCH]
    return [
        {
            "name": p.name,
            "in": p.location,
            "required": p.required or p.location == "path",
            "schema": {**p.schema, **{k: getattr(settings, a) for k, a in p.bounds}},
            **({"description": p.description} if p.description else {}),
        }
        for p in declared
    ]


def _request_body(op: Operation) -> dict[str, Any] | None:
    if op.request_content is not None:
        content = {media: {"schema": s} for media, s in op.request_content.items()}
        return {"required": True, "content": content}
    schema = op.request_schema or (
        {"$ref": f"#/components/schemas/{op.request.__name__}"} if op.request else None
    )
    if schema is None:
        return None
    return {"required": True, "content": {op.request_content_type: {"schema": schema}}}


def _responses(op: Operation, info: ServiceInfo) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    out_schema = op.response_schema or (
        {"$ref": f"#/components/schemas/{op.response.__name__}"} if op.response else None
    )
    # One object for every success status: they are the same answer.
    ok: dict[str, Any] = {"description": "success"}
    if op.response_content is not None:
        ok["content"] = {media: {"schema": s} for media, s in op.response_content.items()}
    elif out_schema is not None and op.status != 204:
        ok["content"] = {op.response_content_type: {"schema": out_schema}}
    if op.response_headers:
        ok["headers"] = dict.fromkeys(op.response_headers, _STRING)
    if op.headers:
        ok["headers"] = dict(op.headers)
    for status in (op.status, *op.also):
        responses[str(status)] = ok
    if conditional(op):
        responses["304"] = {
            "description": "not modified: If-None-Match names the current ETag (no body)",
            "headers": {"ETag": _STRING},
        }
    errors = set(op.errors) | ({401, 403} if op.scopes else set())
    named = by_status(op.problems, info.problem_types)
    problem = op.error_schema or {"$ref": "#/components/schemas/Problem"}
    for status in sorted(errors):
        if status in named:
            responses[str(status)] = _named(named[status], info.problem_types)
            continue
        described = (  # an operation that names its problems names no others
            _catalogued(status, {} if op.problems else info.problem_types)
            if op.error_schema is None
            else {"description": "the body says what failed"}
        )
        responses[str(status)] = {
            **described,
            "content": {op.error_content_type: {"schema": problem}},
        }
    for status, headers in (op.error_headers or {}).items():
        if str(status) in responses:
            responses[str(status)].setdefault("headers", {}).update(headers)
    for response in responses.values():
        for name, header in info.every_response.items():
            response.setdefault("headers", {})[name] = header
    return responses


def _schemas(ops: Sequence[Operation], info: ServiceInfo) -> dict[str, Any]:
    models: set[type[BaseModel]] = set()
    for op in ops:
        models.update(m for m in (op.request, op.response) if m is not None)
    ordered = sorted(models, key=lambda m: m.__name__)
    _, defs = models_json_schema(
        [(m, "validation") for m in ordered], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    schemas["Problem"] = _PROBLEM_SCHEMA
    if not any(op.problems for op in ops):  # each answer admits the whole catalogue
        problem = {**_PROBLEM_SCHEMA, "properties": dict(_PROBLEM_SCHEMA["properties"])}
        types = sorted(TYPE_PREFIX + s for s in info.problem_types)
        problem["properties"]["type"] = {"enum": types}
        schemas["Problem"] = problem
    return schemas


def build_openapi(
    info: ServiceInfo, settings: ServiceSettings, operations: Iterable[Operation]
) -> dict[str, Any]:
    """The OpenAPI document of the probes and ``operations``, as ``settings`` configure them."""
    ops = [*PROBES, *operations]
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        entry: dict[str, Any] = {
            "summary": op.summary,
            # Declared operations are named by their handler; the probes by their route.
            "operationId": op.operation_id or route_name(op),
            "parameters": _parameters(op, settings),
            "responses": {},  # filled below; here for the order of the served members
        }
        body = _request_body(op)
        if body is not None:
            entry["requestBody"] = body
        entry["responses"] = _responses(op, info)
        entry["security"] = [{"bearer": list(op.scopes)}] if op.scopes else []
        paths.setdefault(op.path, {})[op.method.lower()] = entry

    return {
        "openapi": "3.1.0",
        "info": {"title": info.title, "version": settings.version, "description": info.description},
        "paths": paths,
        "components": {
            "schemas": _schemas(ops, info),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
