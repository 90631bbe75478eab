"""The auth matrix: every endpoint needs a valid token for strata-ml and its scope."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.ml.conftest import ALL_SCOPES, ClientFactory, TokenFactory, slug
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration

C = "/v1/collections/auth-matrix"
D = C + "/documents"
NDJSON = {"content-type": "application/x-ndjson"}
JSON_BODY = {"content": b'{"data": {}}', "headers": {"content-type": "application/json"}}

# (method, path, scope it needs, request extras)
ENDPOINTS: list[tuple[str, str, str, dict[str, object]]] = [
    ("GET", "/v1/collections", "docs:read", {}),
    ("PUT", C, "collections:admin", {}),
    ("GET", C, "docs:read", {}),
    ("DELETE", "/v1/collections/auth-matrix-gone", "collections:admin", {}),
    ("POST", D, "docs:write", JSON_BODY),
    ("GET", D, "docs:read", {}),
    ("GET", D + "/d1", "docs:read", {}),
    ("PUT", D + "/d1", "docs:write", JSON_BODY),
    (
        "PATCH",
        D + "/d1",
        "docs:write",
        {"content": b"{}", "headers": {"content-type": "application/merge-patch+json"}},
    ),
    ("DELETE", D + "/d2", "docs:write", {}),
    ("POST", D + ":bulk", "docs:write", {"content": b'{"a": 1}\n', "headers": NDJSON}),
    ("GET", D + ":count", "docs:read", {}),
    ("GET", D + ":sample", "docs:read", {}),
    ("GET", C + "/export", "docs:read", {}),
]
IDS = [f"{m} {p.removeprefix('/v1/collections')}" for m, p, _, _ in ENDPOINTS]


@pytest.fixture(scope="module", autouse=True)
def _fixture_data(ml_service: ServiceProcess, make_token: TokenFactory) -> None:
    """The collection and documents the matrix touches."""
    headers = {"Authorization": f"Bearer {make_token('ml', *ALL_SCOPES, ttl=3600)}"}
    with httpx.Client(base_url=ml_service.base_url, headers=headers) as c:
        c.put(C)
        for doc_id in ("d1", "d2"):
            c.post(D, json={"id": doc_id, "data": {}})


def call(client: httpx.Client, method: str, path: str, extra: dict[str, object]) -> httpx.Response:
    return client.request(method, path, **extra)  # type: ignore[arg-type]


@pytest.mark.parametrize(("method", "path", "scope", "extra"), ENDPOINTS, ids=IDS)
def test_no_token_is_401(
    new_client: ClientFactory, method: str, path: str, scope: str, extra: dict[str, object]
) -> None:
    response = call(new_client(token=None), method, path, extra)
    assert response.status_code == 401
    assert slug(response) == "unauthorized"
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path", "scope", "extra"), ENDPOINTS, ids=IDS)
def test_bad_tokens_are_401(
    new_client: ClientFactory,
    make_token: TokenFactory,
    method: str,
    path: str,
    scope: str,
    extra: dict[str, object],
) -> None:
    for token in (
        make_token("ml", scope, ttl=-60),  # expired (beyond the leeway)
        make_token("cache", scope),  # another service's audience
        make_token("ml", scope, key="another-secret-another-secret-0123456789"),
        "not-a-jwt",
    ):
        response = call(new_client(token=token), method, path, extra)
        assert response.status_code == 401, token
        assert slug(response) == "unauthorized"


@pytest.mark.parametrize(("method", "path", "scope", "extra"), ENDPOINTS, ids=IDS)
def test_wrong_scope_is_403_right_scope_passes(
    new_client: ClientFactory,
    make_token: TokenFactory,
    method: str,
    path: str,
    scope: str,
    extra: dict[str, object],
) -> None:
    others = [s for s in ("docs:read", "docs:write", "collections:admin") if s != scope]
    denied = call(new_client(token=make_token("ml", *others)), method, path, extra)
    assert denied.status_code == 403
    assert slug(denied) == "insufficient-scope"
    allowed = call(new_client(token=make_token("ml", scope)), method, path, extra)
    assert allowed.status_code not in (401, 403), allowed.text
    assert allowed.status_code < 500


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/metrics", "/openapi.json"])
def test_probes_need_no_token(new_client: ClientFactory, path: str) -> None:
    assert new_client(token=None).get(path).status_code == 200
