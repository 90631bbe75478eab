"""Transfers: the happy path, every error slug, and idempotency keys."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from flask import Flask
from flask.testing import FlaskClient


def _transfer(client: FlaskClient, headers: dict[str, str], key: str | None = None, **body):
    extra = {"Idempotency-Key": key or uuid.uuid4().hex} if key != "" else {}
    return client.post("/v1/transfers", json=body, headers={**headers, **extra})


def test_transfer_moves_money_and_writes_two_entries(client: FlaskClient, auth, account) -> None:
    a, b = account(balance=100), account()
    response = _transfer(
        client,
        auth("transfers:write"),
        from_account=a["id"],
        to_account=b["id"],
        amount=30,
        currency="EUR",
        reference="rent",
    )
    assert response.status_code == 201
    transfer = response.json
    assert set(transfer) == {
        "id",
        "from_account",
        "to_account",
        "amount",
        "currency",
        "reference",
        "created_at",
    }
    assert client.get(f"/v1/accounts/{a['id']}", headers=auth()).json["balance"] == 70
    assert client.get(f"/v1/accounts/{b['id']}", headers=auth()).json["balance"] == 30
    fetched = client.get(f"/v1/transfers/{transfer['id']}", headers=auth("accounts:read"))
    assert fetched.status_code == 200
    assert fetched.json == transfer
    debit = client.get(f"/v1/accounts/{a['id']}/entries?limit=1", headers=auth()).json["items"][0]
    credit = client.get(f"/v1/accounts/{b['id']}/entries?limit=1", headers=auth()).json["items"][0]
    assert (debit["transfer_id"], debit["amount"]) == (transfer["id"], -30)
    assert (credit["transfer_id"], credit["amount"]) == (transfer["id"], 30)


def test_unknown_transfer_is_404(client: FlaskClient, auth) -> None:
    response = client.get(f"/v1/transfers/{uuid.uuid4()}", headers=auth())
    assert response.status_code == 404
    assert response.json["type"] == "urn:strata:problem:transfer-not-found"


def test_error_slugs(client: FlaskClient, auth, account) -> None:
    rich, poor, dollars = account(balance=10), account(), account(currency="USD")
    frozen = account(balance=10)
    client.patch(f"/v1/accounts/{frozen['id']}", json={"status": "frozen"}, headers=auth())
    h = auth("transfers:write")
    cases = [
        (
            {"from_account": rich["id"], "to_account": poor["id"], "amount": 11, "currency": "EUR"},
            409,
            "insufficient-funds",
        ),
        (
            {
                "from_account": frozen["id"],
                "to_account": poor["id"],
                "amount": 1,
                "currency": "EUR",
            },
            409,
            "account-not-active",
        ),
        (
            {
                "from_account": poor["id"],
                "to_account": frozen["id"],
                "amount": 1,
                "currency": "EUR",
            },
            409,
            "account-not-active",
        ),
        (
            {
                "from_account": rich["id"],
                "to_account": dollars["id"],
                "amount": 1,
                "currency": "EUR",
            },
            422,
            "currency-mismatch",
        ),
        (
            {"from_account": rich["id"], "to_account": poor["id"], "amount": 1, "currency": "USD"},
            422,
            "currency-mismatch",
        ),
        (
            {"from_account": rich["id"], "to_account": rich["id"], "amount": 1, "currency": "EUR"},
            422,
            "same-account",
        ),
        (
            {
                "from_account": rich["id"],
                "to_account": str(uuid.uuid4()),
                "amount": 1,
                "currency": "EUR",
            },
            404,
            "account-not-found",
        ),
    ]
    for body, status, slug in cases:
        response = _transfer(client, h, **body)
        assert (response.status_code, response.json["type"]) == (
            status,
            f"urn:strata:problem:{slug}",
        ), body
    assert client.get(f"/v1/accounts/{rich['id']}", headers=auth()).json["balance"] == 10


def test_missing_idempotency_key_is_400(client: FlaskClient, auth, account) -> None:
    a, b = account(balance=5), account()
    response = _transfer(
        client, auth(), key="", from_account=a["id"], to_account=b["id"], amount=1, currency="EUR"
    )
    assert response.status_code == 400
    assert response.json["type"] == "urn:strata:problem:idempotency-key-missing"


def test_overlong_idempotency_key_is_422(client: FlaskClient, auth, account) -> None:
    a, b = account(balance=5), account()
    response = _transfer(
        client,
        auth(),
        key="k" * 256,
        from_account=a["id"],
        to_account=b["id"],
        amount=1,
        currency="EUR",
    )
    assert response.status_code == 422


def test_replay_returns_the_original_and_moves_nothing(client: FlaskClient, auth, account) -> None:
    a, b = account(balance=50), account()
    body = {
        "from_account": a["id"],
        "to_account": b["id"],
        "amount": 20,
        "currency": "EUR",
        "reference": "x",
    }
    first = _transfer(client, auth(), key="replay-1", **body)
    second = _transfer(client, auth(), key="replay-1", **body)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json == second.json
    assert client.get(f"/v1/accounts/{a['id']}", headers=auth()).json["balance"] == 30


def test_replay_of_a_refusal_returns_the_same_refusal(client: FlaskClient, auth, account) -> None:
    a, b = account(balance=1), account()
    body = {"from_account": a["id"], "to_account": b["id"], "amount": 2, "currency": "EUR"}
    first = _transfer(client, auth(), key="refused-1", **body)
    client.post(f"/v1/accounts/{a['id']}/deposits", json={"amount": 10}, headers=auth())
    second = _transfer(client, auth(), key="refused-1", **body)
    assert first.status_code == second.status_code == 409
    assert first.json == second.json
    assert client.get(f"/v1/accounts/{a['id']}", headers=auth()).json["balance"] == 11


def test_same_key_different_body_is_422_reuse(client: FlaskClient, auth, account) -> None:
    a, b = account(balance=50), account()
    _transfer(
        client,
        auth(),
        key="reuse-1",
        from_account=a["id"],
        to_account=b["id"],
        amount=1,
        currency="EUR",
    )
    response = _transfer(
        client,
        auth(),
        key="reuse-1",
        from_account=a["id"],
        to_account=b["id"],
        amount=2,
        currency="EUR",
    )
    assert response.status_code == 422
    assert response.json["type"] == "urn:strata:problem:idempotency-key-reuse"
    assert client.get(f"/v1/accounts/{a['id']}", headers=auth()).json["balance"] == 49


def test_keys_are_scoped_to_the_token_subject(client: FlaskClient, auth, account) -> None:
    a, b = account(balance=50), account()
    body = {"from_account": a["id"], "to_account": b["id"], "amount": 5, "currency": "EUR"}
    one = _transfer(client, auth(subject="alice"), key="shared-key", **body)
    two = _transfer(client, auth(subject="bob"), key="shared-key", **body)
    assert (one.status_code, two.status_code) == (201, 201)
    assert one.json["id"] != two.json["id"]
    assert client.get(f"/v1/accounts/{a['id']}", headers=auth()).json["balance"] == 40


def test_concurrent_duplicates_move_money_once(app: Flask, auth, account) -> None:
    a, b = account(balance=1000), account()
    body = {"from_account": a["id"], "to_account": b["id"], "amount": 100, "currency": "EUR"}
    headers = auth()
    key = f"dup-{uuid.uuid4()}"

    def send(_: int):
        response = app.test_client().post(
            "/v1/transfers", json=body, headers={**headers, "Idempotency-Key": key}
        )
        return response.status_code, response.json["id"]

    with ThreadPoolExecutor(max_workers=5) as pool:
        results = list(pool.map(send, range(10)))
    assert {status for status, _ in results} == {201}
    assert len({transfer_id for _, transfer_id in results}) == 1
    client = app.test_client()
    assert client.get(f"/v1/accounts/{a['id']}", headers=auth()).json["balance"] == 900
    assert client.get(f"/v1/accounts/{b['id']}", headers=auth()).json["balance"] == 100


def test_empty_idempotency_key_is_422_not_missing(client: FlaskClient, auth, account) -> None:
    a, b = account(balance=5), account()
    body = {"from_account": a["id"], "to_account": b["id"], "amount": 1, "currency": "EUR"}
    for url, payload in (
        ("/v1/transfers", body),
        (f"/v1/accounts/{a['id']}/deposits", {"amount": 1}),
        (f"/v1/accounts/{a['id']}/withdrawals", {"amount": 1}),
    ):
        response = client.post(url, json=payload, headers=auth(**{"Idempotency-Key": ""}))
        assert response.status_code == 422, url
        assert response.json["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert client.get(f"/v1/accounts/{a['id']}", headers=auth()).json["balance"] == 5
