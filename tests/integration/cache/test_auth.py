"""The auth matrix on every data endpoint: no token, bad tokens, missing scope."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.cache.conftest import ClientFactory, TokenFactory, slug

pytestmark = pytest.mark.integration

# (method, path, body, scope it needs)
ENDPOINTS: list[tuple[str, str, Any, str]] = [
    ("GET", "/v1/kv/auth-key", None, "cache:read"),
    ("PUT", "/v1/kv/auth-key", {"value": 1}, "cache:write"),
    ("DELETE", "/v1/kv/auth-key", None, "cache:write"),
    ("POST", "/v1/kv:mget", {"keys": ["auth-key"]}, "cache:read"),
    ("POST", "/v1/kv:mset", {"items": {"auth-key": 1}}, "cache:write"),
    ("POST", "/v1/counters/auth-key:incr", {"by": 1}, "cache:write"),
    ("GET", "/v1/counters/auth-key", None, "cache:read"),
]
IDS = [f"{m} {p}" for m, p, _, _ in ENDPOINTS]


def call(client: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    return (
        client.request(method, path, json=body)
        if body is not None
        else client.request(method, path)
    )


@pytest.mark.parametrize(("method", "path", "body", "scope"), ENDPOINTS, ids=IDS)
def test_no_token_is_401_with_challenge(
    new_client: ClientFactory, method: str, path: str, body: Any, scope: str
) -> None:
    response = call(new_client(token=None), method, path, body)
    assert response.status_code == 401
    assert slug(response) == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "variant", ["wrong-audience", "expired", "bad-signature", "garbage", "not-bearer"]
)
@pytest.mark.parametrize(("method", "path", "body", "scope"), ENDPOINTS, ids=IDS)
def test_invalid_tokens_are_401(
    new_client: ClientFactory,
    make_token: TokenFactory,
    variant: str,
    method: str,
    path: str,
    body: Any,
    scope: str,
) -> None:
    scopes = ("cache:read", "cache:write")
    tokens = {
        "wrong-audience": make_token("ml", *scopes),
        "expired": make_token("cache", *scopes, ttl=-120),
        "bad-signature": make_token("cache", *scopes, key="another-secret-" + "x" * 40),
        "garbage": "not.a.jwt",
    }
    client = new_client(token=None)
    if variant == "not-bearer":
        headers = {"Authorization": f"Basic {make_token('cache', *scopes)}"}
    else:
        headers = {"Authorization": f"Bearer {tokens[variant]}"}
    response = client.request(method, path, json=body, headers=headers)
    assert response.status_code == 401
    assert slug(response) == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path", "body", "scope"), ENDPOINTS, ids=IDS)
def test_missing_scope_is_403(
    new_client: ClientFactory,
    make_token: TokenFactory,
    method: str,
    path: str,
    body: Any,
    scope: str,
) -> None:
    other = "cache:write" if scope == "cache:read" else "cache:read"
    response = call(new_client(token=make_token("cache", other, "ml:other")), method, path, body)
    assert response.status_code == 403
    assert slug(response) == "insufficient-scope"


@pytest.mark.parametrize(("method", "path", "body", "scope"), ENDPOINTS, ids=IDS)
def test_the_one_scope_is_enough(
    new_client: ClientFactory,
    make_token: TokenFactory,
    method: str,
    path: str,
    body: Any,
    scope: str,
) -> None:
    response = call(new_client(token=make_token("cache", scope)), method, path, body)
    assert response.status_code not in (401, 403)


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/metrics", "/openapi.json"])
def test_probes_need_no_token(new_client: ClientFactory, path: str) -> None:
    assert new_client(token=None).get(path).status_code == 200
