"""Auth matrix: every data endpoint without a token, wrong audience, expired, missing scope."""

from __future__ import annotations

import uuid

import pytest
from flask.testing import FlaskClient

ID = str(uuid.uuid4())
# (method, path, body, scope it needs)
ENDPOINTS = [
    ("POST", "/v1/accounts", {"owner": "x", "currency": "EUR"}, "accounts:write"),
    ("GET", "/v1/accounts", None, "accounts:read"),
    ("GET", f"/v1/accounts/{ID}", None, "accounts:read"),
    ("PATCH", f"/v1/accounts/{ID}", {"status": "frozen"}, "ledger:admin"),
    ("POST", f"/v1/accounts/{ID}/deposits", {"amount": 1}, "ledger:admin"),
    ("POST", f"/v1/accounts/{ID}/withdrawals", {"amount": 1}, "ledger:admin"),
    ("GET", f"/v1/accounts/{ID}/entries", None, "accounts:read"),
    (
        "POST",
        "/v1/transfers",
        {"from_account": ID, "to_account": str(uuid.uuid4()), "amount": 1, "currency": "EUR"},
        "transfers:write",
    ),
    ("GET", f"/v1/transfers/{ID}", None, "accounts:read"),
]
ALL_SCOPES = {"accounts:read", "accounts:write", "transfers:write", "ledger:admin"}
# What each endpoint answers once its scope lets the request through: (status, problem slug).
PAST_AUTH = {
    ("POST", "/v1/accounts"): (201, None),
    ("GET", "/v1/accounts"): (200, None),
    ("GET", f"/v1/accounts/{ID}"): (404, "account-not-found"),
    ("PATCH", f"/v1/accounts/{ID}"): (404, "account-not-found"),
    ("POST", f"/v1/accounts/{ID}/deposits"): (404, "account-not-found"),
    ("POST", f"/v1/accounts/{ID}/withdrawals"): (404, "account-not-found"),
    ("GET", f"/v1/accounts/{ID}/entries"): (404, "account-not-found"),
    ("POST", "/v1/transfers"): (404, "account-not-found"),
    ("GET", f"/v1/transfers/{ID}"): (404, "transfer-not-found"),
}


def _call(client: FlaskClient, method: str, path: str, body, headers: dict[str, str]):
    return client.open(
        path, method=method, json=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex}
    )


def _slug(response) -> str | None:
    if response.content_type != "application/problem+json":
        return None
    return str(response.json["type"]).removeprefix("urn:strata:problem:")


@pytest.mark.parametrize(("method", "path", "body", "scope"), ENDPOINTS)
def test_no_token_is_401_with_challenge(client: FlaskClient, method, path, body, scope) -> None:
    response = _call(client, method, path, body, {})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json["type"] == "urn:strata:problem:unauthorized"


@pytest.mark.parametrize(("method", "path", "body", "scope"), ENDPOINTS)
def test_wrong_audience_is_401(client, make_token, method, path, body, scope) -> None:
    token = make_token("ml", *ALL_SCOPES)
    response = _call(client, method, path, body, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


@pytest.mark.parametrize(("method", "path", "body", "scope"), ENDPOINTS)
def test_expired_token_is_401(client, make_token, method, path, body, scope) -> None:
    token = make_token("critical", *ALL_SCOPES, ttl=-60)
    response = _call(client, method, path, body, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "expired" in response.json["detail"]


@pytest.mark.parametrize(("method", "path", "body", "scope"), ENDPOINTS)
def test_missing_scope_is_403(client, make_token, method, path, body, scope) -> None:
    token = make_token("critical", *(ALL_SCOPES - {scope}))
    response = _call(client, method, path, body, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert response.json["type"] == "urn:strata:problem:insufficient-scope"


@pytest.mark.parametrize(("method", "path", "body", "scope"), ENDPOINTS)
def test_the_right_scope_alone_gets_past_auth(client, make_token, method, path, body, scope):
    token = make_token("critical", scope)
    response = _call(client, method, path, body, {"Authorization": f"Bearer {token}"})
    # Past authentication the route does its own work: the answer it owes these inputs
    # (nothing exists under ID), not merely "not 401/403" (a 500 is no pass).
    assert (response.status_code, _slug(response)) == PAST_AUTH[method, path], response.json


def test_wrong_signature_and_garbage_are_401(client: FlaskClient, make_token) -> None:
    forged = make_token("critical", *ALL_SCOPES, key="another-secret-that-is-long-enough-123")
    for value in (f"Bearer {forged}", "Bearer not.a.jwt", "Basic dXNlcjpwYXNz", "Bearer "):
        response = client.get("/v1/accounts", headers={"Authorization": value})
        assert response.status_code == 401, value


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/metrics", "/openapi.json"])
def test_probes_metrics_and_spec_need_no_token(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 200
