"""Writes answer from what the INSERT/UPDATE returned: no SELECT to re-read the row."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from services.critical.db import ENGINE
from tests.integration.critical.conftest import sql_statements


@pytest.fixture
def statements(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the app runs during the test, in order."""
    with sql_statements(app) as seen:
        yield seen


def verbs(statements: list[str]) -> list[str]:
    """Each statement's first word: SELECT, INSERT, UPDATE, ..."""
    return [statement.split(None, 1)[0].upper() for statement in statements]


def test_opening_an_account_reads_nothing_back(
    client: FlaskClient, auth: Callable[..., dict[str, str]], statements: list[str]
) -> None:
    response = client.post(
        "/v1/accounts", json={"owner": "round-trips", "currency": "EUR"}, headers=auth()
    )
    assert response.status_code == 201
    assert response.json is not None and response.json["created_at"] and response.json["version"]
    assert verbs(statements) == ["INSERT", "INSERT"], statements  # the account, its audit row


def test_changing_a_status_reads_the_row_once(
    client: FlaskClient,
    auth: Callable[..., dict[str, str]],
    account: Callable[..., dict[str, Any]],
    statements: list[str],
) -> None:
    opened = account()
    statements.clear()
    response = client.patch(
        f"/v1/accounts/{opened['id']}", json={"status": "frozen"}, headers=auth()
    )
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["version"] == opened["version"] + 1
    assert response.json["updated_at"] >= opened["updated_at"]
    # The locked read, the update (returning updated_at), the audit row.
    assert verbs(statements) == ["SELECT", "UPDATE", "INSERT"], statements


def test_a_transfer_and_its_replay_are_one_round_trip_each(
    app: Flask,
    client: FlaskClient,
    auth: Callable[..., dict[str, str]],
    account: Callable[..., dict[str, Any]],
) -> None:
    source, target = account(balance=10), account()
    seen: list[tuple[str, bool]] = []
    drivers: list[Any] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # psycopg2 sends BEGIN by itself before a statement outside autocommit.
        seen.append((statement.split("(")[0], cursor.connection.autocommit))
        drivers.append(cursor.connection)

    body = {"from_account": source["id"], "to_account": target["id"], "amount": 3}
    headers = auth(**{"Idempotency-Key": f"one-call-{source['id']}"})
    engine = app.extensions[ENGINE]
    event.listen(engine, "before_cursor_execute", record)
    try:
        first = client.post("/v1/transfers", json={**body, "currency": "EUR"}, headers=headers)
        again = client.post("/v1/transfers", json={**body, "currency": "EUR"}, headers=headers)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert first.status_code == 201, first.json
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json == first.json
    # One statement, in autocommit (no BEGIN, no COMMIT): the call is the transaction.
    call = ("SELECT outcome, status_code, response FROM ledger_transfer", True)
    assert seen == [call, call], seen
    # Back out of autocommit at the server's default level: psycopg2 sends a SET whenever a
    # connection with an explicit isolation level leaves autocommit.
    assert [(raw.autocommit, raw.isolation_level) for raw in drivers] == [(False, None)] * 2
