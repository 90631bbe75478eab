"""Single documents, filtered listing, count and sample under ``/v1/collections/{name}``."""

from __future__ import annotations

import secrets
from typing import Any

from sanic import HTTPResponse, Request

from services.common import problems
from services.common.cursor import parse_limit
from services.common.endpoint import Body, Routes
from services.common.jsonbody import MAX_DEPTH, too_deep
from services.common.operation import Param
from services.common.sanic_routes import declared, query
from services.common.sanic_support import json
from services.ml import params, schemas
from services.ml.api.shared import (
    CURSOR,
    DOC_HEADERS,
    DOCUMENTS,
    FIELDS,
    FILTER,
    ID,
    IF_MATCH,
    LIMIT,
    NAME,
    OP_RULE,
    RANGE,
    READ,
    WRITE,
    body_json,
    collection,
    document_response,
)
from services.ml.context import ctx
from services.ml.data import checked_document
from services.ml.schemas import DocumentIn, DocumentReplace
from services.ml.store import collections, documents, pages, point
from services.ml.store import query as queries

routes = Routes()
_ONE = DOCUMENTS + "/{id}"
_MERGE_SCHEMA: dict[str, Any] = {"type": "object"}
#: The sample's ``n``; its maximum is the service's ``max_sample``.
SAMPLE_SIZE = Param(
    "n", "query", {"type": "integer", "minimum": 1}, bounds=(("maximum", "max_sample"),)
)


@routes("POST", DOCUMENTS, "Create a document", scopes=WRITE, response=schemas.Document,
        response_headers=(*DOC_HEADERS, "Location"), status=201, params=(NAME,),
        errors=(400, 404, 409, 413, 415, 422, 503))  # fmt: skip
async def create_document(request: Request, name: str, body: Body[DocumentIn]) -> HTTPResponse:
    """Create one document (201); the id is generated unless the body names one."""
    query(request)
    name = collection(name)
    fields = body()
    checked_document(fields.data, ctx(request).settings.max_document_bytes)
    async with ctx(request).store.begin() as conn:
        cid = await collections.collection_id(conn, name)
        doc = await documents.create(conn, cid, name, fields.data, fields.id)
    response = document_response(doc, status=201)
    response.headers["Location"] = f"/v1/collections/{name}/documents/{doc['id']}"
    return response


@routes("GET", _ONE, "Get a document", scopes=READ, response=schemas.Document,
        response_headers=DOC_HEADERS, params=(NAME, ID), errors=(404, 422, 503))  # fmt: skip
async def get_document(request: Request, name: str, doc_id: str) -> HTTPResponse:
    """One document."""
    query(request)
    name, doc_id = collection(name), params.document_id(doc_id)
    return document_response(await point.get(ctx(request).store, name, doc_id))


@routes("PUT", _ONE, "Replace a document's data", scopes=WRITE, response=schemas.Document,
        response_headers=DOC_HEADERS, params=(NAME, ID, IF_MATCH),
        errors=(400, 404, 412, 413, 415, 422, 503))  # fmt: skip
async def replace_document(
    request: Request, name: str, doc_id: str, body: Body[DocumentReplace]
) -> HTTPResponse:
    """Replace a document's data (``If-Match`` optional)."""
    query(request)
    name, doc_id = collection(name), params.document_id(doc_id)
    expected = params.if_match(request.headers.get("if-match"))
    data = body().data
    checked_document(data, ctx(request).settings.max_document_bytes)
    async with ctx(request).store.begin() as conn:
        cid = await collections.collection_id(conn, name)
        doc = await documents.replace(conn, cid, name, doc_id, data, expected)
    return document_response(doc)


@routes("PATCH", _ONE, "JSON merge patch (RFC 7396) of a document's data", scopes=WRITE,
        request_schema=_MERGE_SCHEMA, request_content_type="application/merge-patch+json",
        response=schemas.Document, response_headers=DOC_HEADERS, params=(NAME, ID, IF_MATCH),
        errors=(400, 404, 412, 413, 415, 422, 503))  # fmt: skip
async def patch_document(request: Request, name: str, doc_id: str) -> HTTPResponse:
    """Apply an RFC 7396 JSON merge patch to a document's data (``If-Match`` optional)."""
    query(request)
    name, doc_id = collection(name), params.document_id(doc_id)
    expected = params.if_match(request.headers.get("if-match"))
    patch = body_json(request)
    if not isinstance(patch, dict):
        raise params.invalid(["body"], "a merge patch of data must be a JSON object")
    if too_deep(patch, request.body):
        raise params.invalid(["body"], f"must not nest deeper than {MAX_DEPTH} levels")
    limit = ctx(request).settings.max_document_bytes
    async with ctx(request).store.begin() as conn:
        cid = await collections.collection_id(conn, name)
        doc = await documents.patch(conn, cid, name, doc_id, patch, expected, limit)
    return document_response(doc)


@routes("DELETE", _ONE, "Delete a document", scopes=WRITE, status=204,
        params=(NAME, ID, IF_MATCH), errors=(404, 412, 422, 503))  # fmt: skip
async def delete_document(request: Request, name: str, doc_id: str) -> HTTPResponse:
    """Delete a document (``If-Match`` optional)."""
    query(request)
    name, doc_id = collection(name), params.document_id(doc_id)
    expected = params.if_match(request.headers.get("if-match"))
    async with ctx(request).store.begin() as conn:
        cid = await collections.collection_id(conn, name)
        await documents.remove(conn, cid, doc_id, expected)
    return HTTPResponse(status=204)


def document_query(request: Request, *, keyset: bool = False) -> params.DocumentQuery:
    """The filters and ``fields`` the endpoint declares (422 for any other parameter).

    ``keyset``: a listing, whose ``cursor`` is a keyset position (a sample decodes its own).
    """
    query(request)
    allowed = declared(request).query
    args = request.args
    return params.DocumentQuery(
        filter=params.json_filter(args.get("filter")),
        created_after=params.timestamp(args.get("created_after"), "created_after"),
        created_before=params.timestamp(args.get("created_before"), "created_before"),
        fields=params.fields(args.get("fields")) if "fields" in allowed else None,
        after=params.document_cursor(args.get("cursor")) if keyset else None,
    )


@routes("GET", DOCUMENTS, "List documents (filter, range, fields, keyset)", scopes=READ,
        response=schemas.DocumentPage, params=(NAME, FILTER, *RANGE, FIELDS, LIMIT, CURSOR),
        errors=(400, 404, 422, 503))  # fmt: skip
async def list_documents(request: Request, name: str) -> HTTPResponse:
    """A keyset page of documents, filtered by containment and projected in SQL.

    At most ``limit`` documents, fewer when their data reaches ``PAGE_MAX_BYTES``
    (``next_cursor`` then continues after the last one).
    """
    name = collection(name)
    q = document_query(request, keyset=True)
    limit = parse_limit(request.args.get("limit"))
    settings = ctx(request).settings
    budget = pages.Budget(settings.page_max_bytes, settings.page_first_rows)
    async with ctx(request).store.raw(read=True) as pg:
        items, last = await pages.page(pg, name, q, limit, budget)
    cursor = params.next_document_cursor(*last) if last else None
    return json({"items": items, "next_cursor": cursor})


@routes("GET", DOCUMENTS + ":count", "Count matching documents (the listing's filters)",
        scopes=READ, rule=OP_RULE.format(op="documents:count"), response=schemas.Count,
        params=(NAME, FILTER, *RANGE), errors=(404, 422, 503))  # fmt: skip
async def count_documents(request: Request, name: str, op: str) -> HTTPResponse:
    """How many documents match: the listing's filters, so the two always agree."""
    name = collection(name)
    q = document_query(request)
    async with ctx(request).store.raw(read=True) as pg:
        return json({"count": await queries.count(pg, name, q)})


@routes("GET", DOCUMENTS + ":sample", "Reproducible random sample", scopes=READ,
        rule=OP_RULE.format(op="documents:sample"), response=schemas.Sample,
        params=(NAME, SAMPLE_SIZE,
                Param("seed", "query", {"type": "string", "maxLength": 128},
                      description="printable characters; drawn and returned when absent"),
                FILTER, *RANGE, FIELDS,
                Param("cursor", "query", {"type": "string"},
                      description="next_cursor of a sample that filled its response early")),
        errors=(400, 404, 422, 503))  # fmt: skip
async def sample_documents(request: Request, name: str, op: str) -> HTTPResponse:
    """A reproducible pseudo-random sample: the same ``seed`` gives the same documents.

    Like a page, a sample stops early once its data reaches ``PAGE_MAX_BYTES``; its
    ``next_cursor`` then gives the rest of the same sample (the cursor carries the seed).
    """
    name = collection(name)
    q = document_query(request)
    settings = ctx(request).settings
    n = params.positive_int(request.args.get("n"), "n", 100, settings.max_sample)
    seed = request.args.get("seed")
    if seed is not None and (len(seed) > 128 or not seed.isprintable()):
        raise problems.validation_failed(
            [{"loc": ["query", "seed"], "msg": "at most 128 printable characters"}]
        )
    raw_cursor = request.args.get("cursor")
    after = params.sample_cursor(raw_cursor, seed, n) if raw_cursor else None
    seed = after.seed if after else (seed or secrets.token_hex(8))
    position = pages.SamplePosition(after.rank, after.id, after.served) if after else None
    budget = pages.Budget(settings.page_max_bytes, settings.page_first_rows)
    async with ctx(request).store.raw(read=True) as pg:
        items, last = await pages.sample(pg, name, q, n, seed, budget, position)
    cursor = params.next_sample_cursor(seed, last.rank, last.id, last.served) if last else None
    return json({"items": items, "seed": seed, "next_cursor": cursor})
