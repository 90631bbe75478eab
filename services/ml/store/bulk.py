"""Bulk ingest with COPY: one transaction, all rows or none."""

from __future__ import annotations

import uuid

import asyncpg  # type: ignore[import-untyped]

from services.ml.errors import CollectionNotFoundError
from services.ml.store.query import collection_id


async def ingest(pg: asyncpg.Connection, name: str, texts: list[str]) -> list[str]:
    """COPY already-validated JSON texts into ``name``; returns the new ids in order.

    The texts go to PostgreSQL as they arrived (no decode/re-encode): the jsonb codec on
    this connection takes text. The collection row is not locked (the runtime role may
    not): if a concurrent DELETE removes the collection, the COPY fails its foreign key
    (or, if the COPY's key checks came first, the DELETE waits and then takes the new
    documents with it); either way the answer is consistent, the first a 404.
    """
    ids = [str(uuid.uuid4()) for _ in texts]
    try:
        async with pg.transaction():
            cid = await collection_id(pg, name)
            if texts:
                await pg.copy_records_to_table(
                    "ml_documents",
                    records=zip([cid] * len(texts), ids, texts, strict=True),
                    columns=["collection_id", "id", "data"],
                )
    except asyncpg.ForeignKeyViolationError:
        raise CollectionNotFoundError(name) from None
    return ids
