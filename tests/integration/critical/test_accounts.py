"""Accounts: open, read, list with keyset pagination, status changes with If-Match."""

from __future__ import annotations

import uuid

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

PROBLEM = "application/problem+json"


def test_open_account_returns_201_with_the_full_shape(client: FlaskClient, auth) -> None:
    response = client.post(
        "/v1/accounts", json={"owner": "alice", "currency": "EUR"}, headers=auth("accounts:write")
    )
    assert response.status_code == 201
    body = response.json
    assert set(body) == {
        "id",
        "owner",
        "currency",
        "balance",
        "status",
        "version",
        "created_at",
        "updated_at",
    }
    assert (body["owner"], body["currency"], body["balance"], body["status"], body["version"]) == (
        "alice",
        "EUR",
        0,
        "active",
        1,
    )
    assert response.headers["Location"] == f"/v1/accounts/{body['id']}"
    assert response.headers["X-Request-ID"]


def test_get_account_and_etag(client: FlaskClient, auth, account) -> None:
    created = account()
    response = client.get(f"/v1/accounts/{created['id']}", headers=auth("accounts:read"))
    assert response.status_code == 200
    assert response.json == created
    assert response.headers["ETag"] == '"1"'


def test_unknown_account_is_404_account_not_found(client: FlaskClient, auth) -> None:
    response = client.get(f"/v1/accounts/{uuid.uuid4()}", headers=auth())
    assert response.status_code == 404
    assert response.content_type == PROBLEM
    assert response.json["type"] == "urn:strata:problem:account-not-found"


def test_list_pages_through_an_owner_s_accounts_in_creation_order(
    client: FlaskClient, auth, account
) -> None:
    owner = f"pager-{uuid.uuid4().hex[:6]}"
    made, others = [], []
    for _ in range(5):  # another owner's accounts in between: the filter must drop them
        made.append(account(owner=owner)["id"])
        others.append(account(owner=f"other-{uuid.uuid4().hex[:6]}")["id"])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = f"/v1/accounts?owner={owner}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(query, headers=auth("accounts:read")).json
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made
    assert pages == 3
    everyone = client.get("/v1/accounts?limit=1000", headers=auth("accounts:read")).json
    listed = [item["id"] for item in everyone["items"]]
    assert [i for i in listed if i in made or i in others] == [
        i for pair in zip(made, others, strict=True) for i in pair
    ]


def test_list_rejects_bad_limit_and_cursor(client: FlaskClient, auth) -> None:
    for limit in ("0", "1001", "abc"):
        response = client.get(f"/v1/accounts?limit={limit}", headers=auth())
        assert response.status_code == 422, limit
        assert response.json["errors"][0]["loc"] == ["query", "limit"]
    response = client.get("/v1/accounts?cursor=not-a-cursor!", headers=auth())
    assert response.status_code == 400
    assert response.json["type"] == "urn:strata:problem:invalid-cursor"


def test_patch_status_with_if_match(
    client: FlaskClient, auth, account, owner_engine: Engine
) -> None:
    created = account()
    url = f"/v1/accounts/{created['id']}"
    admin = auth("ledger:admin")
    stale = client.patch(url, json={"status": "frozen"}, headers={**admin, "If-Match": '"7"'})
    assert stale.status_code == 412
    assert stale.json["type"] == "urn:strata:problem:version-mismatch"
    assert stale.json["detail"] == "account is at version 1, not 7"
    assert client.get(url, headers=auth()).json["status"] == "active"

    ok = client.patch(url, json={"status": "frozen"}, headers={**admin, "If-Match": '"1"'})
    assert ok.status_code == 200
    assert (ok.json["status"], ok.json["version"]) == ("frozen", 2)
    assert ok.headers["ETag"] == '"2"'
    # Without If-Match the change is unconditional.
    again = client.patch(url, json={"status": "active"}, headers=admin)
    assert (again.status_code, again.json["version"]) == (200, 3)
    # Each change is audited with the status before and after (the refused one is not).
    with owner_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT action, details FROM audit_log WHERE resource = :r "
                "AND action = 'account.status' ORDER BY id"
            ),
            {"r": f"accounts/{created['id']}"},
        ).all()
    assert [tuple(row) for row in rows] == [
        ("account.status", {"before": "active", "after": "frozen"}),
        ("account.status", {"before": "frozen", "after": "active"}),
    ]


def test_patch_requires_a_known_status(client: FlaskClient, auth, account) -> None:
    created = account()
    response = client.patch(
        f"/v1/accounts/{created['id']}", json={"status": "deleted"}, headers=auth("ledger:admin")
    )
    assert response.status_code == 422
    assert response.json["errors"][0]["loc"] == ["body", "status"]


@pytest.mark.parametrize("balance", [1, 5])
def test_an_account_with_money_cannot_close(
    client: FlaskClient, auth, account, balance: int
) -> None:
    funded = account(balance=balance)
    response = client.patch(
        f"/v1/accounts/{funded['id']}", json={"status": "closed"}, headers=auth("ledger:admin")
    )
    assert response.status_code == 409
    assert response.json["type"] == "urn:strata:problem:account-not-empty"
    assert response.json["detail"] == "only an account with a zero balance can close"


def test_an_empty_account_closes(client: FlaskClient, auth, account) -> None:
    empty = account()
    response = client.patch(
        f"/v1/accounts/{empty['id']}", json={"status": "closed"}, headers=auth("ledger:admin")
    )
    assert response.status_code == 200, response.json
    assert (response.json["status"], response.json["version"]) == ("closed", 2)


def test_patch_unknown_account_is_404(client: FlaskClient, auth) -> None:
    unknown = uuid.uuid4()
    response = client.patch(
        f"/v1/accounts/{unknown}", json={"status": "frozen"}, headers=auth("ledger:admin")
    )
    assert response.status_code == 404
    assert response.json["type"] == "urn:strata:problem:account-not-found"
    assert response.json["detail"] == f"account {unknown} does not exist"
