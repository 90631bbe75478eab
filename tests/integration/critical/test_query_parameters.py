"""Every /v1 operation refuses query parameters it does not take (422), after auth."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient


@pytest.fixture
def routes(
    account: Callable[..., dict[str, Any]],
) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(method, path, JSON body) of every /v1 operation, with a real account in the path."""
    acct = account(balance=100)["id"]
    other = account()["id"]
    transfer = {"from_account": acct, "to_account": other, "amount": 1, "currency": "EUR"}
    return [
        ("POST", "/v1/accounts", {"owner": "query-test", "currency": "EUR"}),
        ("GET", "/v1/accounts", None),
        ("GET", f"/v1/accounts/{acct}", None),
        ("PATCH", f"/v1/accounts/{acct}", {"status": "active"}),
        ("POST", f"/v1/accounts/{acct}/deposits", {"amount": 1}),
        ("POST", f"/v1/accounts/{acct}/withdrawals", {"amount": 1}),
        ("GET", f"/v1/accounts/{acct}/entries", None),
        ("POST", "/v1/transfers", transfer),
        ("GET", f"/v1/transfers/{uuid.uuid4()}", None),
    ]


def test_a_misspelt_parameter_is_422_on_every_operation(
    client: FlaskClient, auth, routes, counts
) -> None:
    before = counts()
    for method, path, body in routes:
        headers = auth(**{"Idempotency-Key": uuid.uuid4().hex})
        answer = client.open(f"{path}?limt=1", method=method, json=body, headers=headers)
        assert answer.status_code == 422, (method, path, answer.json)
        problem = answer.json
        assert problem["type"] == "urn:strata:problem:validation-failed"
        assert problem["errors"][0]["loc"] == ["query", "limt"]
        assert "unknown query parameter" in problem["errors"][0]["msg"]
    assert counts() == before  # refused before any write


def test_the_message_lists_what_the_operation_takes(client: FlaskClient, auth) -> None:
    answer = client.get("/v1/accounts?limt=1", headers=auth())
    assert answer.json["errors"][0]["msg"] == (
        "unknown query parameter; this endpoint takes cursor, limit, owner"
    )
    answer = client.get(f"/v1/transfers/{uuid.uuid4()}?x=1", headers=auth())
    assert answer.json["errors"][0]["msg"].endswith("takes no query parameters")


def test_a_parameter_given_twice_is_422(client: FlaskClient, auth) -> None:
    answer = client.get("/v1/accounts?limit=1&limit=2", headers=auth())
    assert answer.status_code == 422
    assert answer.json["errors"] == [{"loc": ["query", "limit"], "msg": "given more than once"}]


def test_documented_parameters_still_apply(client: FlaskClient, auth, account) -> None:
    owner = f"q-{uuid.uuid4().hex[:8]}"
    account(owner=owner)
    account(owner=owner)
    page = client.get(f"/v1/accounts?owner={owner}&limit=1", headers=auth())
    assert page.status_code == 200
    assert len(page.json["items"]) == 1 and page.json["next_cursor"]


def test_authentication_comes_first(client: FlaskClient) -> None:
    assert client.get("/v1/accounts?limt=1").status_code == 401
