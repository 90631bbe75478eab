"""An account read on the driver's cursor (services/critical/reads.py) keeps the contract.

It bypasses SQLAlchemy's execution, so what SQLAlchemy did for it must still happen: a
store error that is not a dropped connection (here a lock wait past the timeout) answers
503 ``store-unavailable`` as problem+json, and the connection goes back to the pool usable.
Dropped connections (retried once) are in test_dropped_connections.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.critical.app import create_app
from services.critical.reads import DRIVER_CURSOR
from services.critical.settings import CriticalSettings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def one_connection_app(critical_settings_migrated: CriticalSettings) -> Iterator[Flask]:
    """The app with one pooled connection (the one that met the error serves next) and a
    short statement/lock timeout."""
    settings = critical_settings_migrated.model_copy(
        update={"pool_size": 1, "max_overflow": 0, "statement_timeout_ms": 300}
    )
    application = create_app(settings)
    yield application
    application.extensions["strata.engine"].dispose()


def test_reads_use_the_driver_cursor_when_not_traced(one_connection_app: Flask) -> None:
    assert one_connection_app.extensions[DRIVER_CURSOR] is True


def test_a_read_past_its_lock_timeout_answers_503_and_the_connection_serves_on(
    one_connection_app: Flask,
    owner_engine: Engine,
    auth: Callable[..., dict[str, str]],
) -> None:
    client = one_connection_app.test_client()
    created = client.post(
        "/v1/accounts", json={"owner": "locked", "currency": "EUR"}, headers=auth()
    )
    assert created.status_code == 201, created.json
    opened: dict[str, Any] = created.json  # type: ignore[assignment]
    url = f"/v1/accounts/{opened['id']}"
    with owner_engine.begin() as conn:  # holds the lock until the block ends
        conn.execute(text("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE"))
        blocked = client.get(url, headers=auth("accounts:read"))
    assert blocked.status_code == 503, blocked.json
    assert blocked.headers["Content-Type"] == "application/problem+json"
    assert blocked.json is not None
    assert blocked.json["type"] == "urn:strata:problem:store-unavailable"
    answer = client.get(url, headers=auth("accounts:read"))
    assert answer.status_code == 200, answer.json
    assert answer.json == opened
    assert answer.headers["ETag"] == f'"{opened["version"]}"'
