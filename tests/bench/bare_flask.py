"""The bare-minimum Flask peer of the critical service (a benchmark reference, not a service).

Two handlers and nothing else (no auth, metrics, logging, validation or problem+json):
``POST /v1/transfers`` runs the same two-account transfer transaction the pgbench script
runs, and ``GET /v1/accounts/<id>`` is one SELECT by key through SQLAlchemy Core. Run it
as the service runs, e.g. ``gunicorn -k gthread -w 2 --threads 4
'tests.bench.bare_flask:create_app()'`` with ``BARE_DATABASE_URL`` set.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from flask import Flask, Response, json, request
from sqlalchemy import create_engine, text

_ACCOUNT = text(
    "SELECT id, owner, currency, balance, status, version, created_at, updated_at "
    "FROM accounts WHERE id = :id"
)
_TRANSFER = (
    text(
        "INSERT INTO idempotency_keys (subject, key, request_hash, status_code, response) "
        "VALUES ('bare', :key, 'h', 0, '{}')"
    ),
    text("SELECT id FROM accounts WHERE id IN (:a, :b) ORDER BY id FOR UPDATE"),
    text(
        "INSERT INTO transfers (id, from_account, to_account, amount, currency) "
        "VALUES (:t, :a, :b, :amount, :currency)"
    ),
    text(
        "INSERT INTO entries (account_id, transfer_id, amount, balance_after) "
        "SELECT a.id, :t, d.delta, a.balance + d.delta "
        "FROM (VALUES (CAST(:a AS uuid), -CAST(:amount AS bigint)), "
        "(CAST(:b AS uuid), CAST(:amount AS bigint))) AS d (account, delta) "
        "JOIN accounts a ON a.id = d.account"
    ),
    text("INSERT INTO audit_log (actor, action, resource) VALUES ('bare', 'transfer.create', :t)"),
)


def create_app() -> Flask:
    """The bare app; its pool is as large as the service's bench pool (per worker)."""
    app = Flask("bare-critical")
    size = int(os.environ.get("BARE_POOL_SIZE", "4"))
    engine = create_engine(os.environ["BARE_DATABASE_URL"], pool_size=size, max_overflow=0)

    @app.get("/v1/accounts/<account_id>")
    def get_account(account_id: str) -> Response:
        with engine.connect() as conn:
            row = conn.execute(_ACCOUNT, {"id": account_id}).mappings().one()
        return _json(dict(row), 200)

    @app.post("/v1/transfers")
    def transfer() -> Response:
        body: dict[str, Any] = request.get_json()
        values = {
            "key": request.headers["Idempotency-Key"],
            "t": str(uuid.uuid4()),
            "a": body["from_account"],
            "b": body["to_account"],
            "amount": body["amount"],
            "currency": body["currency"],
        }
        with engine.begin() as conn:
            for statement in _TRANSFER:
                conn.execute(statement, values)
        return _json({"id": values["t"], **body}, 201)

    return app


def _json(payload: dict[str, Any], status: int) -> Response:
    return Response(json.dumps(payload), status, mimetype="application/json")
