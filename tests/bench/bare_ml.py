"""The bare-minimum Sanic + asyncpg peer of the ml GET (a benchmark reference, not a service).

One handler, ``GET /v1/collections/<name>/documents/<id>``: one SELECT by key on a raw
asyncpg pool, the document's JSONB sent as PostgreSQL's text. No auth, metrics, logging
or problem+json. ``python -m tests.bench.bare_ml --port N`` with ``BARE_DATABASE_DSN``
runs it like the service (2 workers unless ``BARE_WORKERS``).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import orjson

_ONE = (
    "SELECT d.id, d.data::text AS data, d.version, d.created_at, d.updated_at "
    "FROM ml_documents d JOIN ml_collections c ON c.id = d.collection_id "
    "WHERE c.name = $1 AND d.id = $2"
)


def create_app() -> Any:
    """The bare Sanic app (a pool per worker, opened after the fork)."""
    import asyncpg
    from sanic import HTTPResponse, Request, Sanic

    app = Sanic("bare-ml", configure_logging=False)

    @app.before_server_start
    async def connect(app: Sanic[Any, Any]) -> None:
        size = int(os.environ.get("BARE_POOL_SIZE", "5"))
        app.ctx.pool = await asyncpg.create_pool(
            os.environ["BARE_DATABASE_DSN"], min_size=size, max_size=size
        )

    @app.after_server_stop
    async def close(app: Sanic[Any, Any]) -> None:
        await app.ctx.pool.close()

    @app.get("/v1/collections/<name>/documents/<doc_id>")
    async def get(request: Request, name: str, doc_id: str) -> HTTPResponse:
        row = await request.app.ctx.pool.fetchrow(_ONE, name, doc_id)
        if row is None:
            return HTTPResponse(status=404)
        body = {
            "id": row["id"],
            "collection": name,
            "data": orjson.Fragment(row["data"]),
            "version": row["version"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }
        return HTTPResponse(orjson.dumps(body), content_type="application/json")

    return app


def main() -> None:
    """Serve :func:`create_app` multi-worker on loopback."""
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    parser = argparse.ArgumentParser(prog="python -m tests.bench.bare_ml")
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    loader = AppLoader(factory=create_app)
    app = loader.load()
    workers = int(os.environ.get("BARE_WORKERS", "2"))
    app.prepare(host="127.0.0.1", port=port, workers=workers, access_log=False, motd=False)
    Sanic.serve(primary=app, app_loader=loader)


if __name__ == "__main__":
    main()
