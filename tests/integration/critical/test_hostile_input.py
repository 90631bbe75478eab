"""Inputs that once reached PostgreSQL or int() unchecked: each is a 4xx naming what is wrong."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from flask.testing import FlaskClient

from services.critical.currencies import active_codes

INT64_MAX = 2**63 - 1
NUL = "a\x00b"


def _problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
    body: dict = response.json
    assert body["type"] == f"urn:strata:problem:{slug}"
    return body


def _locs(body: dict) -> set[tuple]:
    return {tuple(e["loc"]) for e in body["errors"]}


def _cursor(value: object) -> str:
    # The standard library writes integers of any size (orjson stops at 64 bits).
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


# NUL (U+0000) in any string field or query parameter.


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/v1/accounts", {"owner": NUL, "currency": "EUR"}, ("body", "owner")),
        ("/v1/accounts", {"owner": "o", "currency": "EU\x00"}, ("body", "currency")),
        ("deposits", {"amount": 1, "reference": NUL}, ("body", "reference")),
        ("withdrawals", {"amount": 1, "reference": NUL}, ("body", "reference")),
        ("/v1/transfers", {"reference": NUL}, ("body", "reference")),
        ("/v1/transfers", {"currency": "\x00\x00\x00"}, ("body", "currency")),
        ("/v1/transfers", {"from_account": "\x00"}, ("body", "from_account")),
    ],
)
def test_nul_in_a_body_field_is_422_naming_it(
    client: FlaskClient, auth, account, counts, path: str, body: dict, loc: tuple
) -> None:
    a, b = account(balance=5), account()
    if path in ("deposits", "withdrawals"):
        path = f"/v1/accounts/{a['id']}/{path}"
    elif path == "/v1/transfers":
        body = {
            "from_account": a["id"],
            "to_account": b["id"],
            "amount": 1,
            "currency": "EUR",
            **body,
        }
    before = counts()
    response = client.post(path, json=body, headers=auth(**{"Idempotency-Key": uuid.uuid4().hex}))
    assert loc in _locs(_problem(response, 422, "validation-failed"))
    assert counts() == before


def test_nul_in_a_query_parameter_is_422_naming_it(client: FlaskClient, auth, account) -> None:
    acct = account()
    response = client.get("/v1/accounts", query_string={"owner": NUL}, headers=auth())
    assert _locs(_problem(response, 422, "validation-failed")) == {("query", "owner")}
    response = client.get("/v1/accounts", query_string={"limit": "1\x00"}, headers=auth())
    assert _locs(_problem(response, 422, "validation-failed")) == {("query", "limit")}
    for path in ("/v1/accounts", f"/v1/accounts/{acct['id']}/entries"):
        response = client.get(path, query_string={"cursor": "\x00"}, headers=auth())
        _problem(response, 400, "invalid-cursor")


def test_nul_in_headers_is_a_4xx(client: FlaskClient, auth, account) -> None:
    a, b = account(balance=5), account()
    body = {"from_account": a["id"], "to_account": b["id"], "amount": 1, "currency": "EUR"}
    response = client.post("/v1/transfers", json=body, headers=auth(**{"Idempotency-Key": NUL}))
    assert _locs(_problem(response, 422, "validation-failed")) == {("header", "Idempotency-Key")}
    response = client.patch(
        f"/v1/accounts/{a['id']}", json={"status": "frozen"}, headers=auth(**{"If-Match": "1\x00"})
    )
    assert _locs(_problem(response, 422, "validation-failed")) == {("header", "If-Match")}


# Cursors that decode but hold the wrong things.

ACCOUNT_CURSORS = [
    {"c": 5, "i": str(uuid.uuid4())},
    {"c": "2026-01-01T00:00:00+00:00", "i": 5},
    {"c": "2026-01-01T00:00:00+00:00", "i": ["x"]},
    {"c": "2026-01-01T00:00:00+00:00", "i": None},
    {"c": "not a timestamp", "i": str(uuid.uuid4())},
    {"c": "2026-01-01T00:00:00", "i": str(uuid.uuid4())},  # no time zone
    {"c": "0001-01-01T00:00:00+01:00", "i": str(uuid.uuid4())},  # before year 1 in UTC
    {"c": "2026-13-45T00:00:00+00:00", "i": str(uuid.uuid4())},
    {"c": {"nested": 1}, "i": str(uuid.uuid4())},
    {"c": "2026-01-01T00:00:00+00:00", "i": "not-a-uuid"},
    {"c": "2026-01-01T00:00:00+00:00"},
    ["c", "i"],
    "c",
    None,
]
ENTRY_CURSORS = [
    {"i": True},
    {"i": "5"},
    {"i": 1.5},
    {"i": 2**63},
    {"i": 18446744073709551616},
    {"i": -1},
    {"i": 0},
    {"i": [1]},
    {"i": None},
    {},
    [1],
]


@pytest.mark.parametrize("value", ACCOUNT_CURSORS, ids=str)
def test_malformed_accounts_cursor_is_400(client: FlaskClient, auth, value: object) -> None:
    response = client.get(f"/v1/accounts?cursor={_cursor(value)}", headers=auth())
    _problem(response, 400, "invalid-cursor")


@pytest.mark.parametrize("value", ENTRY_CURSORS, ids=str)
def test_malformed_entries_cursor_is_400(client: FlaskClient, auth, account, value: object) -> None:
    acct = account()
    url = f"/v1/accounts/{acct['id']}/entries?cursor={_cursor(value)}"
    _problem(client.get(url, headers=auth()), 400, "invalid-cursor")


def test_a_cursor_with_an_offset_postgresql_would_refuse_still_works(
    client: FlaskClient, auth
) -> None:
    # Python accepts UTC offsets up to 24 hours; PostgreSQL refuses those past 15:59.
    value = {"c": "2026-01-01T00:00:00+23:00", "i": str(uuid.uuid4())}
    response = client.get(f"/v1/accounts?cursor={_cursor(value)}", headers=auth())
    assert response.status_code == 200


# If-Match: only ASCII digits are versions.


@pytest.mark.parametrize(
    "value", ["²", "¹²", "\u0661", "\u09e9", "1²", "99999999999", "-1", "W/", '""']
)
def test_if_match_that_is_not_ascii_digits_is_422(
    client: FlaskClient, auth, account, value: str
) -> None:
    acct = account()
    response = client.patch(
        f"/v1/accounts/{acct['id']}", json={"status": "frozen"}, headers=auth(**{"If-Match": value})
    )
    _problem(response, 422, "validation-failed")
    assert client.get(f"/v1/accounts/{acct['id']}", headers=auth()).json["status"] == "active"


def test_if_match_star_matches_any_version(client: FlaskClient, auth, account) -> None:
    acct = account()
    response = client.patch(
        f"/v1/accounts/{acct['id']}", json={"status": "frozen"}, headers=auth(**{"If-Match": "*"})
    )
    assert response.status_code == 200


# Token subjects the audit and idempotency columns cannot hold.


@pytest.mark.parametrize(
    "subject",
    ["s" * 256, "s" * 10_000, "a\x00b", "\ud800"],
    ids=["256-chars", "10000-chars", "nul", "lone-surrogate"],
)
def test_unstorable_token_subject_is_401(
    client: FlaskClient, make_token, account, counts, subject: str
) -> None:
    a, b = account(balance=5), account()
    token = make_token("critical", "transfers:write", "accounts:read", subject=subject)
    before = counts()
    response = client.post(
        "/v1/transfers",
        json={"from_account": a["id"], "to_account": b["id"], "amount": 1, "currency": "EUR"},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
    )
    _problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert counts() == before


def test_longest_storable_subject_works(client: FlaskClient, make_token, account) -> None:
    a, b = account(balance=5), account()
    token = make_token("critical", "transfers:write", subject="é" * 255)
    response = client.post(
        "/v1/transfers",
        json={"from_account": a["id"], "to_account": b["id"], "amount": 1, "currency": "EUR"},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
    )
    assert response.status_code == 201


# Messages that say what is wrong.


@pytest.mark.parametrize(
    "literal", [b"9223372036854775808", b"18446744073709551616", b"1" + b"0" * 40, b"1e19"]
)
def test_amount_past_int64_names_the_bound(client: FlaskClient, auth, account, literal) -> None:
    acct = account()
    response = client.post(
        f"/v1/accounts/{acct['id']}/deposits",
        data=b'{"amount": ' + literal + b"}",
        headers={**auth(), "Content-Type": "application/json"},
    )
    body = _problem(response, 422, "validation-failed")
    assert body["errors"][0]["loc"] == ["body", "amount"]
    assert str(INT64_MAX) in body["errors"][0]["msg"]


def test_latin1_body_says_it_is_not_utf8(client: FlaskClient, auth, counts) -> None:
    before = counts()
    response = client.post(
        "/v1/accounts",
        data='{"owner": "Zoë", "currency": "EUR"}'.encode("latin-1"),
        headers={**auth(), "Content-Type": "application/json"},
    )
    body = _problem(response, 400, "malformed-json")
    assert "not valid UTF-8" in body["detail"]
    assert "surrogates" not in body["detail"]
    assert counts() == before


# Money rules: ISO 4217 currencies, owners that are not blank.


@pytest.mark.parametrize("currency", ["ABC", "XXX", "XTS", "XAU", "HRK", "QQQ"])
def test_currency_outside_iso4217_is_refused(client: FlaskClient, auth, currency: str) -> None:
    response = client.post(
        "/v1/accounts", json={"owner": "o", "currency": currency}, headers=auth()
    )
    body = _problem(response, 422, "validation-failed")
    assert _locs(body) == {("body", "currency")}
    assert "ISO 4217" in body["errors"][0]["msg"]


@pytest.mark.parametrize("currency", ["EUR", "JPY", "BHD", "CLF", "ZWG"])
def test_iso4217_currencies_are_accepted(client: FlaskClient, auth, currency: str) -> None:
    assert currency in active_codes()
    response = client.post(
        "/v1/accounts", json={"owner": "o", "currency": currency}, headers=auth()
    )
    assert response.status_code == 201


@pytest.mark.parametrize("owner", [" ", "   ", "\t\n", "\u3000", "\u00a0 "])
def test_blank_owner_is_refused(client: FlaskClient, auth, counts, owner: str) -> None:
    before = counts()
    response = client.post("/v1/accounts", json={"owner": owner, "currency": "EUR"}, headers=auth())
    body = _problem(response, 422, "validation-failed")
    assert _locs(body) == {("body", "owner")}
    assert counts() == before
