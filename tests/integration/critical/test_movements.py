"""Deposits, withdrawals and the entries they write."""

from __future__ import annotations

import uuid

from flask.testing import FlaskClient


def test_deposit_credits_from_the_external_account(client: FlaskClient, auth, account) -> None:
    acct = account()
    response = client.post(
        f"/v1/accounts/{acct['id']}/deposits",
        json={"amount": 250, "reference": "payroll"},
        headers=auth("ledger:admin"),
    )
    assert response.status_code == 201
    record = response.json
    assert (record["to_account"], record["amount"], record["currency"]) == (acct["id"], 250, "EUR")
    assert record["from_account"] != acct["id"]
    assert client.get(f"/v1/accounts/{acct['id']}", headers=auth()).json["balance"] == 250


def test_withdrawal_debits_and_cannot_overdraw(client: FlaskClient, auth, account) -> None:
    acct = account(balance=100)
    url = f"/v1/accounts/{acct['id']}/withdrawals"
    ok = client.post(url, json={"amount": 60}, headers=auth("ledger:admin"))
    assert ok.status_code == 201
    too_much = client.post(url, json={"amount": 41}, headers=auth("ledger:admin"))
    assert too_much.status_code == 409
    assert too_much.json["type"] == "urn:strata:problem:insufficient-funds"
    assert client.get(f"/v1/accounts/{acct['id']}", headers=auth()).json["balance"] == 40


def test_movements_on_a_frozen_account_are_refused(client: FlaskClient, auth, account) -> None:
    acct = account(balance=10)
    client.patch(f"/v1/accounts/{acct['id']}", json={"status": "frozen"}, headers=auth())
    for kind in ("deposits", "withdrawals"):
        response = client.post(
            f"/v1/accounts/{acct['id']}/{kind}", json={"amount": 1}, headers=auth()
        )
        assert response.status_code == 409, kind
        assert response.json["type"] == "urn:strata:problem:account-not-active"


def test_movement_on_unknown_account_is_404(client: FlaskClient, auth) -> None:
    response = client.post(
        f"/v1/accounts/{uuid.uuid4()}/deposits", json={"amount": 1}, headers=auth()
    )
    assert response.status_code == 404
    assert response.json["type"] == "urn:strata:problem:account-not-found"


def test_deposit_with_idempotency_key_moves_money_once(client: FlaskClient, auth, account) -> None:
    acct = account()
    headers = auth("ledger:admin", **{"Idempotency-Key": f"dep-{uuid.uuid4()}"})
    first = client.post(f"/v1/accounts/{acct['id']}/deposits", json={"amount": 7}, headers=headers)
    second = client.post(f"/v1/accounts/{acct['id']}/deposits", json={"amount": 7}, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json == second.json
    assert second.headers["Idempotent-Replayed"] == "true"
    assert client.get(f"/v1/accounts/{acct['id']}", headers=auth()).json["balance"] == 7


def test_entries_newest_first_with_running_balance_and_pages(
    client: FlaskClient, auth, account
) -> None:
    acct = account()
    for amount in (10, 20, 30):
        client.post(f"/v1/accounts/{acct['id']}/deposits", json={"amount": amount}, headers=auth())
    client.post(f"/v1/accounts/{acct['id']}/withdrawals", json={"amount": 5}, headers=auth())
    url = f"/v1/accounts/{acct['id']}/entries"
    first = client.get(f"{url}?limit=3", headers=auth("accounts:read")).json
    assert [e["amount"] for e in first["items"]] == [-5, 30, 20]
    assert [e["balance_after"] for e in first["items"]] == [55, 60, 30]
    assert set(first["items"][0]) == {
        "id",
        "account_id",
        "transfer_id",
        "amount",
        "balance_after",
        "created_at",
    }
    rest = client.get(f"{url}?limit=3&cursor={first['next_cursor']}", headers=auth()).json
    assert [e["amount"] for e in rest["items"]] == [10]
    assert rest["next_cursor"] is None


def test_entries_of_unknown_account_is_404(client: FlaskClient, auth) -> None:
    response = client.get(f"/v1/accounts/{uuid.uuid4()}/entries", headers=auth())
    assert response.status_code == 404
