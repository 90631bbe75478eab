"""Single documents: create, replace, merge-patch, delete (one by key: store/point.py).

Every write bumps ``version``; ``If-Match`` is checked in the same statement (replace,
delete) or under a row lock in the same transaction (merge patch), so of two writers
holding the same stale version exactly one wins.

``data`` is read as the text PostgreSQL prints and sent on as it is (``orjson.Fragment``),
like every other read path: numbers are never rounded through a Python float.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    RowMapping,
    Text,
    cast,
    delete,
    exc,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from services.common.jsonbody import JsonValueError, loads
from services.ml.data import checked_document
from services.ml.errors import (
    CollectionNotFoundError,
    DocumentExistsError,
    DocumentNotFoundError,
    StoreError,
    VersionMismatchError,
)
from services.ml.models import documents
from services.ml.params import invalid, merge_patch
from services.ml.store.engine import sqlstate

FOREIGN_KEY_VIOLATION = "23503"
_COLUMNS = (
    documents.c.id,
    cast(documents.c.data, Text).label("data"),
    documents.c.version,
    documents.c.created_at,
    documents.c.updated_at,
)


def as_document(row: RowMapping, collection: str) -> dict[str, Any]:
    """The API shape of a document row (``data`` as PostgreSQL's text)."""
    return {"id": row["id"], "collection": collection, **row, "data": orjson.Fragment(row["data"])}


def _at_version(expected: int) -> ColumnElement[bool]:
    # As bigint: an If-Match above the int4 range matches no version (412), not a 500.
    return documents.c.version == literal(expected, BigInteger)


async def create(
    conn: AsyncConnection, cid: int, collection: str, data: dict[str, Any], doc_id: str | None
) -> dict[str, Any]:
    """Insert one document (id generated unless given); the id must be free.

    The collection is not found if it was deleted since ``cid`` was read (its foreign
    key fails).
    """
    try:
        row = (
            await conn.execute(
                insert(documents)
                .values(collection_id=cid, id=doc_id or str(uuid.uuid4()), data=data)
                .on_conflict_do_nothing()
                .returning(*_COLUMNS)
            )
        ).first()
    except exc.IntegrityError as error:
        if sqlstate(error) == FOREIGN_KEY_VIOLATION:
            raise CollectionNotFoundError(collection) from None
        raise
    if row is None:
        raise DocumentExistsError(doc_id)
    return as_document(row._mapping, collection)


async def _explain_miss(conn: AsyncConnection, cid: int, doc_id: str) -> StoreError:
    """Why a conditional write matched no row: missing, or at another version."""
    current = await conn.scalar(
        select(documents.c.version).where(
            documents.c.collection_id == cid, documents.c.id == doc_id
        )
    )
    if current is None:
        return DocumentNotFoundError(doc_id)
    return VersionMismatchError(int(current))


async def replace(
    conn: AsyncConnection,
    cid: int,
    collection: str,
    doc_id: str,
    data: dict[str, Any],
    expected: int | None,
) -> dict[str, Any]:
    """Replace ``data`` (optionally only at version ``expected``)."""
    stmt = (
        update(documents)
        .where(documents.c.collection_id == cid, documents.c.id == doc_id)
        .values(data=data, version=documents.c.version + 1, updated_at=func.clock_timestamp())
        .returning(*_COLUMNS)
    )
    if expected is not None:
        stmt = stmt.where(_at_version(expected))
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise await _explain_miss(conn, cid, doc_id)
    return as_document(row._mapping, collection)


async def patch(
    conn: AsyncConnection,
    cid: int,
    collection: str,
    doc_id: str,
    patch_body: dict[str, Any],
    expected: int | None,
    max_bytes: int,
) -> dict[str, Any]:
    """Apply an RFC 7396 merge patch under a row lock (call inside a transaction)."""
    current = (
        await conn.execute(
            select(cast(documents.c.data, Text).label("data"), documents.c.version)
            .where(documents.c.collection_id == cid, documents.c.id == doc_id)
            .with_for_update()
        )
    ).first()
    if current is None:
        raise DocumentNotFoundError(doc_id)
    if expected is not None and current.version != expected:
        raise VersionMismatchError(current.version)
    try:
        stored = loads(current.data)
    except JsonValueError as exc:  # stored before today's limits (e.g. nested too deeply)
        reason = f"the stored document cannot be patched ({exc}); replace it"
        raise invalid(["body"], reason) from None
    merged = merge_patch(stored, patch_body)
    checked_document(merged, max_bytes)
    row = (
        await conn.execute(
            update(documents)
            .where(documents.c.collection_id == cid, documents.c.id == doc_id)
            .values(data=merged, version=documents.c.version + 1, updated_at=func.clock_timestamp())
            .returning(*_COLUMNS)
        )
    ).one()
    return as_document(row._mapping, collection)


async def remove(conn: AsyncConnection, cid: int, doc_id: str, expected: int | None) -> None:
    """Delete one document (optionally only at version ``expected``)."""
    stmt = (
        delete(documents)
        .where(documents.c.collection_id == cid, documents.c.id == doc_id)
        .returning(documents.c.id)
    )
    if expected is not None:
        stmt = stmt.where(_at_version(expected))
    if (await conn.execute(stmt)).first() is None:
        raise await _explain_miss(conn, cid, doc_id)
