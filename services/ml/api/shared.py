"""Helpers every ml blueprint uses: body parsing, scopes, document responses."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sanic import HTTPResponse, Request

from services.common import problems
from services.common.jsonbody import parse_json
from services.common.sanic_support import json, principal
from services.ml import params

READ = "docs:read"
WRITE = "docs:write"
ADMIN = "collections:admin"

M = TypeVar("M", bound=BaseModel)


def authorize(request: Request, *scopes: str) -> None:
    """401/403 unless the bearer token grants ``scopes``."""
    principal(request, *scopes)


def body_json(request: Request) -> Any:
    """The JSON body (400 malformed, 415 wrong type)."""
    return parse_json(request.body, request.headers.get("content-type"))


def body_model(request: Request, model: type[M]) -> M:
    """The body validated as ``model`` (422 listing each failing field)."""
    try:
        return model.model_validate(body_json(request))
    except ValidationError as exc:
        raise problems.from_validation_error(exc, prefix=["body"]) from None


def collection(name: str) -> str:
    """The collection name from the path, validated."""
    return params.collection_name(name)


def document_response(doc: dict[str, Any], status: int = 200) -> HTTPResponse:
    """A document with its version as the ETag (for the next ``If-Match``)."""
    return json(doc, status=status, headers={"ETag": f'"{doc["version"]}"'})
