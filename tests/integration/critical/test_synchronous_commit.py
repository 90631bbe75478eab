"""A commit that no synchronous standby confirmed is never acknowledged (the Patroni tiers).

PostgreSQL answers COMMIT with success and only a WARNING when a statement timeout cancels
the wait for the synchronous standby: the transfer is then on one server. The service must
answer 503, and a retry with the same Idempotency-Key must not acknowledge it either until
it is replicated; then the retry replays the one stored transfer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from services.critical.app import create_app
from services.critical.migrate import migrate
from services.devstack.postgres import PostgresServer
from tests.integration.critical.conftest import create_database, critical_settings


@pytest.fixture
def unreplicated() -> Iterator[tuple[PostgresServer, Flask]]:
    """A server whose commits wait for a standby that never comes, and an app on it."""
    pg = PostgresServer().start()
    try:
        create_database(pg, "strata_critical")
        settings = critical_settings(pg, "strata_critical", statement_timeout_ms=700)
        migrate(settings)
        app = create_app(settings)
        yield pg, app
        app.extensions["strata.engine"].dispose()
    finally:
        pg.stop()


def _standby_required(pg: PostgresServer, required: bool) -> None:
    pg.psql(f"ALTER SYSTEM SET synchronous_standby_names = '{'nobody' if required else ''}'")
    pg.psql("SELECT pg_reload_conf()")


def test_unconfirmed_commit_is_503_until_replicated(
    unreplicated: tuple[PostgresServer, Flask], auth: Callable[..., dict[str, str]]
) -> None:
    pg, app = unreplicated
    client = app.test_client()
    ids = []
    for _ in range(2):
        r = client.post("/v1/accounts", json={"owner": "sync", "currency": "EUR"}, headers=auth())
        assert r.status_code == 201
        ids.append(r.json["id"])  # type: ignore[index]
    r = client.post(
        f"/v1/accounts/{ids[0]}/deposits", json={"amount": 500, "reference": "s"}, headers=auth()
    )
    assert r.status_code == 201

    key = str(uuid.uuid4())
    body: dict[str, Any] = {
        "from_account": ids[0],
        "to_account": ids[1],
        "amount": 70,
        "currency": "EUR",
        "reference": "unconfirmed",
    }
    _standby_required(pg, True)
    first = client.post("/v1/transfers", json=body, headers=auth(**{"Idempotency-Key": key}))
    assert first.status_code == 503, first.json
    assert first.json["type"].endswith("store-unavailable")  # type: ignore[index]
    # Committed on this server only: the replay must not acknowledge it either.
    again = client.post("/v1/transfers", json=body, headers=auth(**{"Idempotency-Key": key}))
    assert again.status_code == 503, again.json
    assert pg.psql("SELECT count(*) FROM transfers WHERE reference = 'unconfirmed'",
                   "strata_critical").strip() == "1"  # fmt: skip

    _standby_required(pg, False)
    replay = client.post("/v1/transfers", json=body, headers=auth(**{"Idempotency-Key": key}))
    assert replay.status_code == 201, replay.json
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert pg.psql("SELECT count(*) FROM transfers WHERE reference = 'unconfirmed'",
                   "strata_critical").strip() == "1"  # fmt: skip
    balances = [client.get(f"/v1/accounts/{i}", headers=auth()).json["balance"] for i in ids]  # type: ignore[index]
    assert balances == [430, 70]
    # Ordinary writes are acknowledged again.
    fresh = client.post(
        "/v1/transfers",
        json={**body, "reference": "after"},
        headers=auth(**{"Idempotency-Key": str(uuid.uuid4())}),
    )
    assert fresh.status_code == 201


def test_a_replay_on_the_general_path_waits_for_the_standby_too(
    unreplicated: tuple[PostgresServer, Flask], auth: Callable[..., dict[str, str]]
) -> None:
    """Deposits replay through ``idempotency.claim``: its no-op write makes the replay's COMMIT
    wait for the standby like the original's, so an unreplicated deposit is not acknowledged
    by its retry either (transfers replay inside ``ledger_transfer()``, tested above)."""
    pg, app = unreplicated
    client = app.test_client()
    opened = client.post("/v1/accounts", json={"owner": "sync", "currency": "EUR"}, headers=auth())
    assert opened.status_code == 201
    url = f"/v1/accounts/{opened.json['id']}/deposits"  # type: ignore[index]
    headers = auth(**{"Idempotency-Key": str(uuid.uuid4())})
    _standby_required(pg, True)
    first = client.post(url, json={"amount": 9, "reference": "unconfirmed"}, headers=headers)
    assert first.status_code == 503, first.json
    again = client.post(url, json={"amount": 9, "reference": "unconfirmed"}, headers=headers)
    assert again.status_code == 503, again.json
    _standby_required(pg, False)
    replay = client.post(url, json={"amount": 9, "reference": "unconfirmed"}, headers=headers)
    assert replay.status_code == 201, replay.json
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert pg.psql("SELECT count(*) FROM transfers WHERE reference = 'unconfirmed'",
                   "strata_critical").strip() == "1"  # fmt: skip
