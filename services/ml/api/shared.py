"""What every ml endpoint uses: scopes, declared parameters, body parsing, document answers."""

from __future__ import annotations

from typing import Any

from sanic import HTTPResponse, Request

from services.common.jsonbody import parse_json
from services.common.operation import Param
from services.common.sanic_support import json
from services.ml import params
from services.ml.params import COLLECTION_NAME, DOCUMENT_ID, MAX_FIELDS

READ = ("docs:read",)
WRITE = ("docs:write",)
ADMIN = ("collections:admin",)
COLLECTIONS = "/v1/collections"
DOCUMENTS = COLLECTIONS + "/{name}/documents"
#: The Sanic rule of ``/v1/collections/{name}/<op>``: Sanic percent-encodes ":" in static
#: path segments ("documents%3Abulk"), which a literal "documents:bulk" request never
#: matches; a one-value regex parameter keeps the colon.
OP_RULE = "/v1/collections/<name:str>/<op:{op}>"

NAME = Param("name", "path", {"type": "string", "pattern": COLLECTION_NAME.pattern}, True)
ID = Param("id", "path", {"type": "string", "pattern": DOCUMENT_ID.pattern}, True)
IF_MATCH = Param("If-Match", "header", {"type": "string", "pattern": r'^(W/)?"?[0-9]{1,18}"?$'})
LIMIT = Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000})
CURSOR = Param("cursor", "query", {"type": "string"})
FILTER = Param(
    "filter", "query", {"type": "string"}, description="URL-encoded JSON object (containment)"
)
RANGE = (
    Param("created_after", "query", {"type": "string", "format": "date-time"}),
    Param("created_before", "query", {"type": "string", "format": "date-time"}),
)
FIELDS = Param(
    "fields",
    "query",
    {"type": "string"},
    description=f"comma-separated dotted paths, at most {MAX_FIELDS}",
)
DOC_HEADERS = ("ETag",)  # the document's version, for If-Match


def body_json(request: Request) -> Any:
    """The JSON body (400 malformed, 415 wrong type)."""
    return parse_json(request.body, request.headers.get("content-type"))


def collection(name: str) -> str:
    """The collection name from the path, validated."""
    return params.collection_name(name)


def document_response(doc: dict[str, Any], status: int = 200) -> HTTPResponse:
    """A document with its version as the ETag (for the next ``If-Match``)."""
    return json(doc, status=status, headers={"ETag": f'"{doc["version"]}"'})
