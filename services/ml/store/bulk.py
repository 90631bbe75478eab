"""Bulk ingest with COPY: one transaction, all rows or none."""

from __future__ import annotations

import uuid

import asyncpg  # type: ignore[import-untyped]

from services.ml.store.collections import not_found


async def ingest(pg: asyncpg.Connection, name: str, texts: list[str]) -> list[str]:
    """COPY already-validated JSON texts into ``name``; returns the new ids in order.

    The texts go to PostgreSQL as they arrived (no decode/re-encode): the jsonb codec on
    this connection takes text. ``FOR SHARE`` on the collection row keeps a concurrent
    DELETE of the collection from interleaving with the COPY.
    """
    ids = [str(uuid.uuid4()) for _ in texts]
    async with pg.transaction():
        cid = await pg.fetchval("SELECT id FROM ml_collections WHERE name = $1 FOR SHARE", name)
        if cid is None:
            raise not_found(name)
        if texts:
            await pg.copy_records_to_table(
                "ml_documents",
                records=zip([cid] * len(texts), ids, texts, strict=True),
                columns=["collection_id", "id", "data"],
            )
    return ids
