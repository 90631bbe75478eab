"""Bad input gets the documented 4xx and leaves the database unchanged."""

from __future__ import annotations

import random
import uuid

import pytest
from flask.testing import FlaskClient

from services.critical.currencies import active_codes

INT64_MAX = 2**63 - 1


@pytest.fixture
def pair(account):
    return account(balance=100), account()


def _transfer_body(pair, **override):
    a, b = pair
    return {
        "from_account": a["id"],
        "to_account": b["id"],
        "amount": 1,
        "currency": "EUR",
        "reference": "r",
        **override,
    }


BAD_TRANSFER_FIELDS = [
    {"amount": 0},
    {"amount": -5},
    {"amount": INT64_MAX + 1},
    {"amount": 1.5},
    {"amount": "10"},
    {"amount": True},
    {"amount": None},
    {"currency": "eur"},
    {"currency": "EURO"},
    {"currency": 978},
    {"from_account": "not-a-uuid"},
    {"to_account": 12},
    {"reference": "r" * 201},
    {"unexpected": "field"},
]


@pytest.mark.parametrize("override", BAD_TRANSFER_FIELDS, ids=lambda o: str(o)[:40])
def test_bad_transfer_fields_are_422_and_write_nothing(
    client: FlaskClient, auth, pair, counts, override
) -> None:
    before = counts()
    response = client.post(
        "/v1/transfers",
        json=_transfer_body(pair, **override),
        headers=auth(**{"Idempotency-Key": uuid.uuid4().hex}),
    )
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert response.json["type"] == "urn:strata:problem:validation-failed"
    assert response.json["errors"]
    assert all("loc" in e and "msg" in e for e in response.json["errors"])
    assert counts() == before


def test_missing_fields_are_listed(client: FlaskClient, auth) -> None:
    response = client.post(
        "/v1/transfers", json={}, headers=auth(**{"Idempotency-Key": uuid.uuid4().hex})
    )
    assert response.status_code == 422
    locs = {tuple(e["loc"]) for e in response.json["errors"]}
    assert {
        ("body", "from_account"),
        ("body", "to_account"),
        ("body", "amount"),
        ("body", "currency"),
    } <= locs


@pytest.mark.parametrize("raw", [b"{", b"not json", b'{"owner": "a",}', b"\xff\xfe"])
def test_malformed_json_is_400(client: FlaskClient, auth, counts, raw: bytes) -> None:
    before = counts()
    response = client.post(
        "/v1/accounts", data=raw, headers={**auth(), "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json["type"] == "urn:strata:problem:malformed-json"
    assert counts() == before


def test_non_object_json_is_422(client: FlaskClient, auth) -> None:
    response = client.post("/v1/accounts", json=["owner", "EUR"], headers=auth())
    assert response.status_code == 422


def test_non_json_content_type_is_415(client: FlaskClient, auth) -> None:
    response = client.post(
        "/v1/accounts", data="owner=a", headers={**auth(), "Content-Type": "text/plain"}
    )
    assert response.status_code == 415


def test_huge_body_is_413_and_writes_nothing(client: FlaskClient, auth, counts) -> None:
    before = counts()
    body = b'{"owner": "' + b"a" * 2_000_000 + b'", "currency": "EUR"}'
    response = client.post(
        "/v1/accounts", data=body, headers={**auth(), "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json["type"] == "urn:strata:problem:payload-too-large"
    assert counts() == before


@pytest.mark.parametrize(
    "body",
    [
        {"owner": "", "currency": "EUR"},
        {"owner": "o" * 201, "currency": "EUR"},
        {"owner": 5, "currency": "EUR"},
        {"owner": "a", "currency": "E1R"},
        {"owner": "a"},
        {"owner": "a", "currency": "EUR", "balance": 1000},
    ],
)
def test_bad_account_bodies_are_422(client: FlaskClient, auth, counts, body) -> None:
    before = counts()
    response = client.post("/v1/accounts", json=body, headers=auth())
    assert response.status_code == 422
    assert counts() == before


def test_invalid_uuid_in_path_is_422_naming_it(client: FlaskClient, auth) -> None:
    for path in ("/v1/accounts/123", "/v1/accounts/xyz/entries", "/v1/transfers/nope"):
        response = client.get(path, headers=auth())
        assert response.status_code == 422, path
        assert response.json["errors"][0]["loc"][0] == "path"


def test_bad_if_match_is_422(client: FlaskClient, auth, account) -> None:
    acct = account()
    response = client.patch(
        f"/v1/accounts/{acct['id']}",
        json={"status": "frozen"},
        headers={**auth(), "If-Match": "abc"},
    )
    assert response.status_code == 422
    assert client.get(f"/v1/accounts/{acct['id']}", headers=auth()).json["status"] == "active"


def test_deposit_overflowing_int64_balance_is_refused(client: FlaskClient, auth, account, counts):
    # A currency of its own, so the external account's running total cannot overflow first.
    currency = random.choice(sorted(active_codes() - {"EUR", "USD", "CHF"}))
    acct = account(balance=INT64_MAX - 10, currency=currency)
    before = counts()
    response = client.post(
        f"/v1/accounts/{acct['id']}/deposits", json={"amount": 11}, headers=auth()
    )
    assert response.status_code == 422
    assert response.json["type"] == "urn:strata:problem:amount-out-of-range"
    assert counts() == before
    balance = client.get(f"/v1/accounts/{acct['id']}", headers=auth()).json["balance"]
    assert balance == INT64_MAX - 10


def test_unknown_route_404_and_wrong_method_405(client: FlaskClient, auth) -> None:
    missing = client.get("/v1/nothing-here", headers=auth())
    assert (missing.status_code, missing.content_type) == (404, "application/problem+json")
    wrong = client.delete("/v1/transfers", headers=auth())
    assert wrong.status_code == 405
    assert "POST" in wrong.headers["Allow"]


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/v1/accounts", "limt=1"),
        ("/v1/accounts", "limit=1&limit=2"),
        ("/v1/accounts/{id}", "verbose=1"),
        ("/v1/accounts/{id}/entries", "owner=x"),
        ("/v1/transfers/{tid}", "expand=entries"),
    ],
)
def test_unknown_or_repeated_query_parameters_are_422(
    client: FlaskClient, auth, account, path: str, query: str
) -> None:
    """A misspelt or unsupported parameter is refused, never silently ignored."""
    target = path.format(id=account()["id"], tid=uuid.uuid4())
    response = client.get(f"{target}?{query}", headers=auth())
    assert response.status_code == 422, response.json
    name = query.split("=", 1)[0]
    assert response.json["errors"][0]["loc"] == ["query", name]


def test_a_write_takes_no_query_parameters(client: FlaskClient, auth, counts) -> None:
    """Writes refuse query parameters too, and nothing is written."""
    before = counts()
    response = client.post(
        "/v1/accounts?dry_run=1", json={"owner": "q", "currency": "EUR"}, headers=auth()
    )
    assert response.status_code == 422
    assert counts() == before
