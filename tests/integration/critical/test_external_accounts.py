"""Regression: the per-currency external account cannot be named in a transfer.

Deposit and withdrawal answers show its id. A token with only ``transfers:write`` once
moved 1,000,000 EUR out of it into a customer account (and could withdraw into it
without ``ledger:admin``). It must be answered like an account that does not exist.
"""

from __future__ import annotations

import uuid

import pytest
from flask.testing import FlaskClient


@pytest.fixture
def external_id(client: FlaskClient, auth, account) -> str:
    funded = account()
    deposit = client.post(
        f"/v1/accounts/{funded['id']}/deposits", json={"amount": 5}, headers=auth("ledger:admin")
    )
    assert deposit.status_code == 201
    withdrawal = client.post(
        f"/v1/accounts/{funded['id']}/withdrawals", json={"amount": 5}, headers=auth()
    )
    # Both answers show the same outside account, from one side or the other.
    assert deposit.json["from_account"] == withdrawal.json["to_account"]
    return str(deposit.json["from_account"])


@pytest.mark.parametrize("side", ["from_account", "to_account"])
def test_a_transfer_naming_the_external_account_is_404_and_moves_nothing(
    client: FlaskClient, auth, account, counts, external_id: str, side: str
) -> None:
    customer = account(balance=10)
    other = "to_account" if side == "from_account" else "from_account"
    before = counts()
    response = client.post(
        "/v1/transfers",
        json={side: external_id, other: customer["id"], "amount": 1_000_000, "currency": "EUR"},
        headers=auth("transfers:write", **{"Idempotency-Key": uuid.uuid4().hex}),
    )
    assert response.status_code == 404
    assert response.json["type"] == "urn:strata:problem:account-not-found"
    assert external_id in response.json["detail"]
    # Only the idempotency record of the refusal is written: no transfer, entry or audit row.
    assert counts() == {**before, "idempotency_keys": before["idempotency_keys"] + 1}
    assert client.get(f"/v1/accounts/{customer['id']}", headers=auth()).json["balance"] == 10


def test_the_external_account_is_not_addressable(client: FlaskClient, auth, external_id) -> None:
    for path in (
        f"/v1/accounts/{external_id}",
        f"/v1/accounts/{external_id}/entries",
    ):
        assert client.get(path, headers=auth()).status_code == 404, path
    for kind in ("deposits", "withdrawals"):
        response = client.post(
            f"/v1/accounts/{external_id}/{kind}", json={"amount": 1}, headers=auth()
        )
        assert response.status_code == 404, kind
    frozen = client.patch(f"/v1/accounts/{external_id}", json={"status": "frozen"}, headers=auth())
    assert frozen.status_code == 404
