"""Deposits, withdrawals and the entries they write."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.common.limits import INT64_MAX, INT64_MIN
from services.critical import idempotency, ledger
from services.critical.errors import InsufficientFundsError
from tests.integration.critical.conftest import sql_statements


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
    assert record["reference"] == "payroll"
    assert record["from_account"] != acct["id"]
    assert client.get(f"/v1/accounts/{acct['id']}", headers=auth()).json["balance"] == 250


def test_withdrawal_debits_and_cannot_overdraw(client: FlaskClient, auth, account) -> None:
    acct = account(balance=100)
    url = f"/v1/accounts/{acct['id']}/withdrawals"
    ok = client.post(url, json={"amount": 60, "reference": "atm"}, headers=auth("ledger:admin"))
    assert ok.status_code == 201
    assert (ok.json["from_account"], ok.json["amount"], ok.json["reference"]) == (
        acct["id"],
        60,
        "atm",
    )
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
    missing = uuid.uuid4()
    response = client.post(f"/v1/accounts/{missing}/deposits", json={"amount": 1}, headers=auth())
    assert response.status_code == 404
    assert response.json["type"] == "urn:strata:problem:account-not-found"
    assert response.json["detail"] == f"account {missing} does not exist"


def test_deposit_with_idempotency_key_moves_money_once(client: FlaskClient, auth, account) -> None:
    acct = account()
    headers = auth("ledger:admin", **{"Idempotency-Key": f"dep-{uuid.uuid4()}"})
    first = client.post(f"/v1/accounts/{acct['id']}/deposits", json={"amount": 7}, headers=headers)
    second = client.post(f"/v1/accounts/{acct['id']}/deposits", json={"amount": 7}, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json == second.json
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert client.get(f"/v1/accounts/{acct['id']}", headers=auth()).json["balance"] == 7


def test_entries_newest_first_with_running_balance_and_pages(
    client: FlaskClient, auth, account, ledger_session: Session
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
    # The limit is the query's, not only the page's: the ledger reads no more rows.
    rows = ledger.list_entries(ledger_session, uuid.UUID(acct["id"]), None, 2)
    assert [e.amount for e in rows] == [-5, 30]


def test_entries_of_unknown_account_is_404(client: FlaskClient, auth) -> None:
    response = client.get(f"/v1/accounts/{uuid.uuid4()}/entries", headers=auth())
    assert response.status_code == 404


def test_a_movement_rereads_the_balance_under_its_lock(
    client: FlaskClient, auth, account, ledger_session: Session
) -> None:
    """A session that read the balance before another request spent it checks the rules
    against the balance under the row lock, not the copy it holds (no lost update)."""
    acct = account(balance=100)
    held = ledger.get_account(ledger_session, uuid.UUID(acct["id"]))
    assert held.balance == 100
    spent = client.post(
        f"/v1/accounts/{acct['id']}/withdrawals", json={"amount": 60}, headers=auth()
    )
    assert spent.status_code == 201
    actor = ledger.Actor("tester", None)
    with pytest.raises(InsufficientFundsError):
        ledger.withdraw(ledger_session, actor, held.id, 50, "late")
    ledger_session.rollback()
    ledger.withdraw(ledger_session, actor, held.id, 40, "all of it")
    ledger_session.commit()
    assert client.get(f"/v1/accounts/{acct['id']}", headers=auth()).json["balance"] == 0


def test_a_new_currency_gets_its_own_external_account(client: FlaskClient, auth, account) -> None:
    """The first deposit in a currency creates that currency's external account and moves
    money through it, not through another currency's (USD: no other test here uses it; it
    sorts after EUR, so neither heap nor index order hands back the EUR one by luck)."""
    eur = account()
    first = client.post(f"/v1/accounts/{eur['id']}/deposits", json={"amount": 5}, headers=auth())
    assert first.status_code == 201
    usd = account(currency="USD")
    response = client.post(f"/v1/accounts/{usd['id']}/deposits", json={"amount": 7}, headers=auth())
    assert response.status_code == 201, response.json
    assert response.json["currency"] == "USD"
    assert response.json["from_account"] != first.json["from_account"]
    assert client.get(f"/v1/accounts/{usd['id']}", headers=auth()).json["balance"] == 7


def _deposit(client: FlaskClient, auth, account_id: str, amount: int):
    return client.post(
        f"/v1/accounts/{account_id}/deposits", json={"amount": amount}, headers=auth()
    )


def test_a_balance_may_reach_int64_max_but_never_pass_it(
    client: FlaskClient, auth, account
) -> None:
    # JPY: no other test here uses it, so no other balance in it can overflow first.
    acct = account(balance=INT64_MAX - 10, currency="JPY")
    assert _deposit(client, auth, acct["id"], 10).status_code == 201
    over = _deposit(client, auth, acct["id"], 1)
    assert (over.status_code, over.json["type"]) == (422, "urn:strata:problem:amount-out-of-range")
    assert over.json["detail"] == "the resulting balance would not fit in a 64-bit integer"
    assert client.get(f"/v1/accounts/{acct['id']}", headers=auth()).json["balance"] == INT64_MAX


def test_the_external_account_may_reach_int64_min_but_never_pass_it(
    client: FlaskClient, auth, account, owner_engine
) -> None:
    """Deposits drive the external account of their currency below zero: it is the side a
    deposit could overflow (GBP: no other test here uses it)."""
    account(balance=INT64_MAX, currency="GBP")
    edge = account(balance=1, currency="GBP")  # the external balance is now exactly INT64_MIN
    with owner_engine.connect() as conn:
        outside = conn.execute(
            text("SELECT balance FROM accounts WHERE kind = 'external' AND currency = 'GBP'")
        ).scalar_one()
    assert outside == INT64_MIN
    third = account(currency="GBP")
    refused = _deposit(client, auth, third["id"], 1)
    assert (refused.status_code, refused.json["type"]) == (
        422,
        "urn:strata:problem:amount-out-of-range",
    )
    # Money flowing back out raises the external balance again: then the deposit fits.
    back = client.post(f"/v1/accounts/{edge['id']}/withdrawals", json={"amount": 1}, headers=auth())
    assert back.status_code == 201
    assert _deposit(client, auth, third["id"], 1).status_code == 201


def test_a_deposit_finds_an_existing_external_account_without_inserting_one(
    app: Flask, client: FlaskClient, auth, account
) -> None:
    """The external account is created once per currency; later deposits only read it (no
    INSERT ... ON CONFLICT round trip on every deposit)."""
    acct = account(balance=1)  # its deposit made the EUR external account exist
    with sql_statements(app) as seen:
        response = _deposit(client, auth, acct["id"], 2)
    assert response.status_code == 201, response.json
    assert not [s for s in seen if s.startswith("INSERT INTO accounts")], seen


def test_one_key_from_two_subjects_is_two_deposits(client: FlaskClient, auth, account) -> None:
    """Keys are scoped by the token's subject: another client's key is not ours to replay,
    to refuse, or to overwrite (the general idempotency path; transfers have their own)."""
    acct = account()
    key = f"shared-{uuid.uuid4()}"
    url = f"/v1/accounts/{acct['id']}/deposits"

    def deposit(subject: str, amount: int):
        headers = auth("ledger:admin", subject=subject, **{"Idempotency-Key": key})
        return client.post(url, json={"amount": amount}, headers=headers)

    alice, bob = deposit("alice", 5), deposit("bob", 6)
    assert (alice.status_code, bob.status_code) == (201, 201), (alice.json, bob.json)
    assert "Idempotent-Replayed" not in alice.headers and "Idempotent-Replayed" not in bob.headers
    assert alice.json["id"] != bob.json["id"]
    # Each replays its own answer; a different body is a reuse for that subject only.
    again = deposit("bob", 6)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json == bob.json
    assert deposit("alice", 6).status_code == 422
    assert deposit("alice", 5).json == alice.json
    # A subject's other keys are other requests: its replay finds the one it names.
    other = client.post(
        url,
        json={"amount": 1},
        headers=auth("ledger:admin", subject="alice", **{"Idempotency-Key": f"{key}-2"}),
    )
    assert other.status_code == 201 and other.json["id"] != alice.json["id"]
    assert deposit("alice", 5).json == alice.json
    assert client.get(f"/v1/accounts/{acct['id']}", headers=auth()).json["balance"] == 12


def test_request_fingerprints_are_stable_across_releases() -> None:
    """A stored key outlives a release: a client's retry after an upgrade must still match
    its first attempt, so the fingerprint's canonical form is a contract (sha256 of the
    sorted, compact JSON of the scope and the body), pinned here."""
    body = {"reference": "r", "amount": 7}
    canonical = json.dumps(
        {"scope": "deposits", "body": body}, sort_keys=True, separators=(",", ":")
    )
    expected = hashlib.sha256(canonical.encode()).hexdigest()
    assert expected == "4c26c555a45e6b4ff7c9d0dd3a35ab56b6d83b50a0d7d173ff2d08b23f66f542"
    assert idempotency.fingerprint("deposits", body) == expected
    assert idempotency.fingerprint("withdrawals", body) != expected
    assert idempotency.fingerprint("deposits", {**body, "amount": 8}) != expected


def test_the_general_transfer_path_moves_money_and_audits_who(
    client: FlaskClient, auth, account, ledger_session: Session, owner_engine
) -> None:
    """``ledger.transfer`` commits a transfer when the state changed after
    ``ledger_transfer()`` declined (a deposit landed in between): the record, the balances
    and the audit row carry what the caller asked for."""
    source, target = account(balance=70), account()
    reference = f"rent-{uuid.uuid4().hex}"
    record = ledger.transfer(
        ledger_session,
        ledger.Actor("payer", "req-general"),
        uuid.UUID(source["id"]),
        uuid.UUID(target["id"]),
        30,
        "EUR",
        reference,
    )
    ledger_session.commit()
    assert (str(record.from_account), str(record.to_account), record.amount) == (
        source["id"],
        target["id"],
        30,
    )
    assert (record.currency, record.reference, record.kind) == ("EUR", reference, "transfer")
    shown = client.get(f"/v1/transfers/{record.id}", headers=auth()).json
    assert (shown["reference"], shown["amount"]) == (reference, 30)
    balances = [
        client.get(f"/v1/accounts/{a['id']}", headers=auth()).json["balance"]
        for a in (source, target)
    ]
    assert balances == [40, 30]
    with owner_engine.connect() as conn:
        audited = conn.execute(
            text("SELECT actor, request_id, action FROM audit_log WHERE resource = :r"),
            {"r": f"transfers/{record.id}"},
        ).all()
    assert [tuple(row) for row in audited] == [("payer", "req-general", "transfer.create")]
