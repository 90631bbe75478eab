"""405 with Allow everywhere, HEAD wherever GET, no unknown query parameters, odd tokens,
CORS as a browser sees it, and bounded metric labels."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.devstack.redis import RedisServer
from tests.integration.cache.conftest import ClientFactory, TokenFactory, cache_env, slug
from tests.support.process import ServiceProcess
from tests.support.rawhttp import get_with_body, logged_levels

pytestmark = pytest.mark.integration

ALLOW = {
    "/v1/kv/{k}": "DELETE, GET, HEAD, PUT",
    "/v1/kv:mget": "POST",
    "/v1/kv:mset": "POST",
    "/v1/counters/{k}": "GET, HEAD",
    "/v1/counters/{k}:incr": "GET, HEAD, POST",  # a key may itself end in ":incr"
    "/livez": "GET, HEAD",
    "/openapi.json": "GET, HEAD",
}


@pytest.mark.parametrize("path", sorted(ALLOW))
def test_every_405_names_allow(client: httpx.Client, key: str, path: str) -> None:
    url = path.replace("{k}", key)
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "XMETHOD"):
        if method in ALLOW[path].split(", "):
            continue
        response = client.request(method, url)
        assert response.status_code == 405, (method, url)
        assert slug(response) == "method-not-allowed"
        assert response.headers["allow"] == ALLOW[path], (method, url)


@pytest.mark.parametrize("body", [b"", b'{"ignored": true}'], ids=["length-0", "json"])
def test_a_get_with_a_body_reads_and_ignores_it(
    cache_service: ServiceProcess, client: httpx.Client, rw_token: str, key: str, body: bytes
) -> None:
    # Sanic's GET default drained the body after the answer and logged "body not consumed"
    # at ERROR for each such request (every GET of wrk, which sends Content-Length: 0).
    client.put(f"/v1/kv/{key}", json={"value": 1})
    request_id = f"get-body-{key}"
    statuses = get_with_body(cache_service.port, f"/v1/kv/{key}", rw_token, body, request_id)
    assert statuses == [200, 200]
    assert logged_levels(cache_service.log(), request_id) == []  # the service logs WARNING+


def test_an_over_limit_body_on_a_get_is_413(client: httpx.Client, key: str) -> None:
    response = client.request("GET", f"/v1/kv/{key}", content=b"x" * (1_048_576 + 1))
    assert response.status_code == 413
    assert slug(response) == "payload-too-large"


def test_head_answers_wherever_get_does(client: httpx.Client, key: str) -> None:
    client.put(f"/v1/kv/{key}", json={"value": 1})
    client.post(f"/v1/counters/{key}:incr")
    for url in (f"/v1/kv/{key}", f"/v1/counters/{key}", "/livez", "/readyz", "/metrics"):
        get, head = client.get(url), client.head(url)
        assert get.status_code == head.status_code == 200, url
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
    missing = client.head(f"/v1/kv/{key}-absent")
    assert missing.status_code == 404
    assert client.head(f"/v1/kv/{key}", headers={"Authorization": ""}).status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/kv/{k}?ttl=1"),
        ("PUT", "/v1/kv/{k}?nx=1"),
        ("DELETE", "/v1/kv/{k}?x="),
        ("POST", "/v1/kv:mget?x=1"),
        ("POST", "/v1/kv:mset?ttl=5"),
        ("GET", "/v1/counters/{k}?x=1"),
        ("POST", "/v1/counters/{k}:incr?by=5"),
    ],
)
def test_query_parameters_are_refused(
    client: httpx.Client, key: str, method: str, path: str
) -> None:
    bodies = {"PUT": {"value": 1}, "POST": {"keys": ["a"]} if "mget" in path else None}
    body = {"items": {"a": 1}} if "mset" in path else bodies.get(method)
    response = client.request(method, path.replace("{k}", key), json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"][0] == "query"
    assert client.get(f"/v1/counters/{key}").status_code == 404


def test_a_token_that_is_not_utf8_is_401(new_client: ClientFactory, key: str) -> None:
    client = new_client(token=None)
    for raw in (b"Bearer \xff\xfe\xfd", b"Bearer abc.\xc3(.def"):
        response = client.get(f"/v1/kv/{key}", headers={"Authorization": raw})
        assert response.status_code == 401
        assert slug(response) == "unauthorized"


@pytest.mark.parametrize("subject", ["", "x" * 256])
def test_a_blank_or_overlong_subject_is_401(
    new_client: ClientFactory, make_token: TokenFactory, key: str, subject: str
) -> None:
    response = new_client(token=make_token("cache", "cache:read", subject=subject)).get(
        f"/v1/kv/{key}"
    )
    assert response.status_code == 401
    assert "sub" in response.json()["detail"]


def test_invented_methods_share_one_metric_label(client: httpx.Client) -> None:
    for i in range(5):
        assert client.request(f"XMETHOD{i}", "/v1/kv:mget").status_code == 405
    text = client.get("/metrics").text
    assert "XMETHOD" not in text
    assert 'method="other"' in text


ORIGIN = "https://app.example"


@pytest.fixture(scope="module")
def cors_service(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """A 1-worker cache server with CORS on for one origin."""
    tmp: Path = tmp_path_factory.mktemp("cache-cors")
    env = cache_env(redis_server, STRATA_CACHE_CORS_ALLOWED_ORIGINS=ORIGIN)
    service = ServiceProcess("cache", env, tmp, workers=1).start()
    yield service
    service.stop()


def test_browsers_get_the_headers_they_need(
    cors_service: ServiceProcess, rw_token: str, key: str
) -> None:
    with httpx.Client(base_url=cors_service.base_url, timeout=10) as browser:
        preflight = browser.options(
            f"/v1/kv/{key}",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "authorization, content-type, if-none-match",
            },
        )
        assert preflight.status_code == 204
        assert "PUT" in preflight.headers["access-control-allow-methods"]
        allowed = {
            h.strip() for h in preflight.headers["access-control-allow-headers"].lower().split(",")
        }
        assert {"authorization", "content-type", "if-none-match"} <= allowed
        auth = {"Authorization": f"Bearer {rw_token}", "Origin": ORIGIN}
        stored = browser.put(f"/v1/kv/{key}", json={"value": 1}, headers=auth)
        exists = browser.put(
            f"/v1/kv/{key}", json={"value": 2}, headers={**auth, "If-None-Match": "*"}
        )
        anonymous = browser.get(f"/v1/kv/{key}", headers={"Origin": ORIGIN})
        for response, status in ((stored, 200), (exists, 412), (anonymous, 401)):
            assert response.status_code == status
            assert response.headers["access-control-allow-origin"] == ORIGIN
            exposed = response.headers["access-control-expose-headers"].lower()
            assert {"x-request-id", "etag", "idempotent-replayed", "retry-after"} <= {
                h.strip() for h in exposed.split(",")
            }
            assert "www-authenticate" in exposed
