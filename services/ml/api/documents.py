"""Single documents, filtered listing, count and sample under ``/v1/collections/{name}``."""

from __future__ import annotations

import secrets

from sanic import Blueprint, HTTPResponse, Request

from services.common import problems
from services.common.cursor import parse_limit
from services.common.jsonbody import MAX_DEPTH, too_deep
from services.common.sanic_support import json, query, read_route
from services.ml import params
from services.ml.api.shared import (
    READ,
    WRITE,
    authorize,
    body_json,
    body_model,
    collection,
    document_response,
)
from services.ml.context import ctx
from services.ml.data import checked_document
from services.ml.schemas import DocumentIn, DocumentReplace
from services.ml.store import collections, documents, pages
from services.ml.store import query as queries

bp = Blueprint("documents", url_prefix="/collections")
MERGE_PATCH = "application/merge-patch+json"
#: What selects documents: listing, count, sample and export take the same filters.
FILTERS = ("filter", "created_after", "created_before")
LIST_PARAMS = (*FILTERS, "fields", "limit", "cursor")
SAMPLE_PARAMS = (*FILTERS, "fields", "n", "seed", "cursor")
EXPORT_PARAMS = (*FILTERS, "fields")


@bp.post("/<name:str>/documents", name="create_document")
async def create_document(request: Request, name: str) -> HTTPResponse:
    """Create one document (201); the id is generated unless the body names one."""
    authorize(request, WRITE)
    query(request, ())
    name = collection(name)
    body = body_model(request, DocumentIn)
    checked_document(body.data, ctx(request).settings.max_document_bytes)
    async with ctx(request).store.begin() as conn:
        cid = await collections.collection_id(conn, name)
        doc = await documents.create(conn, cid, name, body.data, body.id)
    response = document_response(doc, status=201)
    response.headers["Location"] = f"/v1/collections/{name}/documents/{doc['id']}"
    return response


@read_route(bp, "/<name:str>/documents/<doc_id:str>", name="get_document")
async def get_document(request: Request, name: str, doc_id: str) -> HTTPResponse:
    """One document."""
    authorize(request, READ)
    query(request, ())
    name, doc_id = collection(name), params.document_id(doc_id)
    async with ctx(request).store.connect() as conn:
        cid = await collections.collection_id(conn, name)
        return document_response(await documents.get(conn, cid, name, doc_id))


@bp.put("/<name:str>/documents/<doc_id:str>", name="replace_document")
async def replace_document(request: Request, name: str, doc_id: str) -> HTTPResponse:
    """Replace a document's data (``If-Match`` optional)."""
    authorize(request, WRITE)
    query(request, ())
    name, doc_id = collection(name), params.document_id(doc_id)
    expected = params.if_match(request.headers.get("if-match"))
    body = body_model(request, DocumentReplace)
    checked_document(body.data, ctx(request).settings.max_document_bytes)
    async with ctx(request).store.begin() as conn:
        cid = await collections.collection_id(conn, name)
        doc = await documents.replace(conn, cid, name, doc_id, body.data, expected)
    return document_response(doc)


@bp.patch("/<name:str>/documents/<doc_id:str>", name="patch_document")
async def patch_document(request: Request, name: str, doc_id: str) -> HTTPResponse:
    """Apply an RFC 7396 JSON merge patch to a document's data (``If-Match`` optional)."""
    authorize(request, WRITE)
    query(request, ())
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


@bp.delete("/<name:str>/documents/<doc_id:str>", name="delete_document")
async def delete_document(request: Request, name: str, doc_id: str) -> HTTPResponse:
    """Delete a document (``If-Match`` optional)."""
    authorize(request, WRITE)
    query(request, ())
    name, doc_id = collection(name), params.document_id(doc_id)
    expected = params.if_match(request.headers.get("if-match"))
    async with ctx(request).store.begin() as conn:
        cid = await collections.collection_id(conn, name)
        await documents.remove(conn, cid, doc_id, expected)
    return HTTPResponse(status=204)


def document_query(
    request: Request, allowed: tuple[str, ...], *, keyset: bool = False
) -> params.DocumentQuery:
    """The filters and ``fields`` among ``allowed`` (422 for any other parameter).

    ``keyset``: a listing, whose ``cursor`` is a keyset position (a sample decodes its own).
    """
    query(request, allowed)
    args = request.args
    return params.DocumentQuery(
        filter=params.json_filter(args.get("filter")),
        created_after=params.timestamp(args.get("created_after"), "created_after"),
        created_before=params.timestamp(args.get("created_before"), "created_before"),
        fields=params.fields(args.get("fields")) if "fields" in allowed else None,
        after=params.document_cursor(args.get("cursor")) if keyset else None,
    )


@read_route(bp, "/<name:str>/documents", name="list_documents")
async def list_documents(request: Request, name: str) -> HTTPResponse:
    """A keyset page of documents, filtered by containment and projected in SQL.

    At most ``limit`` documents, fewer when their data reaches ``PAGE_MAX_BYTES``
    (``next_cursor`` then continues after the last one).
    """
    authorize(request, READ)
    name = collection(name)
    q = document_query(request, LIST_PARAMS, keyset=True)
    limit = parse_limit(request.args.get("limit"))
    settings = ctx(request).settings
    budget = pages.Budget(settings.page_max_bytes, settings.page_first_rows)
    async with ctx(request).store.raw(read=True) as pg:
        items, last = await pages.page(pg, name, q, limit, budget)
    cursor = params.next_document_cursor(*last) if last else None
    return json({"items": items, "next_cursor": cursor})


# A regex parameter, not a static segment: see the note on documents:bulk in api/bulk.py.
@read_route(bp, "/<name:str>/<op:documents:count>", name="count_documents")
async def count_documents(request: Request, name: str, op: str) -> HTTPResponse:
    """How many documents match: the listing's filters, so the two always agree."""
    authorize(request, READ)
    name = collection(name)
    q = document_query(request, FILTERS)
    async with ctx(request).store.raw(read=True) as pg:
        return json({"count": await queries.count(pg, name, q)})


@read_route(bp, "/<name:str>/<op:documents:sample>", name="sample_documents")
async def sample_documents(request: Request, name: str, op: str) -> HTTPResponse:
    """A reproducible pseudo-random sample: the same ``seed`` gives the same documents.

    Like a page, a sample stops early once its data reaches ``PAGE_MAX_BYTES``; its
    ``next_cursor`` then gives the rest of the same sample (the cursor carries the seed).
    """
    authorize(request, READ)
    name = collection(name)
    q = document_query(request, SAMPLE_PARAMS)
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
