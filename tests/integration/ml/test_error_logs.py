"""A database error is logged without the document data or parameters it involved.

The module's own database and a dedicated server: a CHECK constraint (added behind the
service's back, as a schema drift or a DBA's rule might) refuses documents holding a key,
so PostgreSQL fails the write with ``DETAIL: Failing row contains (... the document ...)``
and SQLAlchemy would add the bound parameters. The service answers a plain 500 and its log
says what failed (SQLSTATE, table, constraint) and nothing of the data.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from services.devstack.postgres import PostgresServer
from tests.integration.ml.conftest import slug
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration
CANARY = "canary-7e3a91-document-secret"


def test_database_errors_are_logged_without_data(
    postgres_server: PostgresServer,
    ml_database: str,
    ml_db: dict[str, str],
    tmp_path: Path,
    token: str,
) -> None:
    env = {**ml_db, "STRATA_ML_LOG_LEVEL": "INFO"}
    postgres_server.psql(
        "ALTER TABLE ml_documents ADD CONSTRAINT no_canary CHECK (NOT data ? 'canary')",
        ml_database,
    )
    service = ServiceProcess("ml", env, tmp_path, workers=1).start()
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=service.base_url, headers=headers, timeout=30) as client:
            assert client.put("/v1/collections/logs").status_code == 201
            docs = "/v1/collections/logs/documents"
            ok = client.post(docs, json={"id": "d1", "data": {"a": 1}})
            assert ok.status_code == 201
            failures = [
                # SQLAlchemy path: INSERT with bound parameters
                client.post(docs, json={"data": {"canary": CANARY}}),
                # SQLAlchemy path: UPDATE with bound parameters
                client.put(f"{docs}/d1", json={"data": {"canary": CANARY}}),
                # asyncpg COPY path
                client.post(
                    f"{docs}:bulk",
                    content=b'{"fine": 1}\n{"canary": "' + CANARY.encode() + b'"}\n',
                    headers={"content-type": "application/x-ndjson"},
                ),
            ]
            for response in failures:
                assert response.status_code == 500
                assert slug(response) == "internal-error"
                assert CANARY not in response.text
            assert client.get(f"{docs}/d1").json()["data"] == {"a": 1}
        log = service.log()
        assert CANARY not in log
        assert "Failing row" not in log
        assert "[parameters" not in log
        errors = [line for line in log.splitlines() if '"level":"error"' in line]
        assert len(errors) == 3, log[-3000:]
        for line in errors:  # still says what failed, where
            assert "SQLSTATE 23514" in line
            assert "constraint no_canary" in line
            assert "table ml_documents" in line
    finally:
        service.stop()
