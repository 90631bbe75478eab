"""Collections: create (idempotent), look up, list, delete."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.ml.errors import CollectionNotFoundError
from services.ml.models import collections, documents


async def ensure(conn: AsyncConnection, name: str) -> tuple[dict[str, Any], bool]:
    """Create ``name`` unless it exists; returns the collection and whether it was created."""
    created = (
        await conn.execute(
            insert(collections)
            .values(name=name)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(collections.c.name, collections.c.created_at)
        )
    ).first()
    if created is not None:
        return dict(created._mapping), True
    existing = (
        await conn.execute(
            select(collections.c.name, collections.c.created_at).where(collections.c.name == name)
        )
    ).one()
    return dict(existing._mapping), False


async def collection_id(conn: AsyncConnection, name: str) -> int:
    """The id of ``name``."""
    found = await conn.scalar(select(collections.c.id).where(collections.c.name == name))
    if found is None:
        raise CollectionNotFoundError(name)
    return int(found)


async def get(conn: AsyncConnection, name: str) -> dict[str, Any]:
    """One collection with its document count (an index-only scan of the keyset index)."""
    row = (
        await conn.execute(
            select(collections.c.id, collections.c.name, collections.c.created_at).where(
                collections.c.name == name
            )
        )
    ).first()
    if row is None:
        raise CollectionNotFoundError(name)
    count = await conn.scalar(
        select(func.count()).select_from(documents).where(documents.c.collection_id == row.id)
    )
    return {"name": row.name, "created_at": row.created_at, "count": int(count or 0)}


async def page(conn: AsyncConnection, after: str | None, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` + 1 collections by name after ``after`` (keyset)."""
    stmt = select(collections.c.name, collections.c.created_at).order_by(collections.c.name)
    if after is not None:
        stmt = stmt.where(collections.c.name > after)
    rows = await conn.execute(stmt.limit(limit + 1))
    return [dict(r._mapping) for r in rows]


async def remove(conn: AsyncConnection, name: str) -> None:
    """Delete a collection and (cascade) its documents, or 404."""
    gone = await conn.execute(
        delete(collections).where(collections.c.name == name).returning(collections.c.id)
    )
    if gone.first() is None:
        raise CollectionNotFoundError(name)
