"""One document by collection name and id: the hot read, one statement on the driver.

Through SQLAlchemy's asyncio layer the same read took six round trips (a pre-ping that is
a transaction, BEGIN, the collection lookup, the document, ROLLBACK) and twice the Python
time; here it is one prepared statement in autocommit (Store.fetch_one). A left join
tells a missing collection (no row) from a missing document (a row without one).
"""

from __future__ import annotations

from typing import Any

import orjson

from services.ml.errors import CollectionNotFoundError, DocumentNotFoundError
from services.ml.store.engine import Store

_ONE = (
    "SELECT d.id, d.data::text AS data, d.version, d.created_at, d.updated_at "
    "FROM ml_collections c LEFT JOIN ml_documents d "
    "ON d.collection_id = c.id AND d.id = $2 WHERE c.name = $1"
)


async def get(store: Store, collection: str, doc_id: str) -> dict[str, Any]:
    """The document in the API's shape (``data`` as PostgreSQL's text), or a 404 error."""
    row = await store.fetch_one(_ONE, collection, doc_id)
    if row is None:
        raise CollectionNotFoundError(collection)
    if row["id"] is None:
        raise DocumentNotFoundError(doc_id)
    return {
        "id": row["id"],
        "collection": collection,
        "data": orjson.Fragment(row["data"]),
        "version": row["version"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
