"""HTTP rules on the real server: 405 with Allow, HEAD, query parameters, odd tokens,
aborted requests and method labels in the metrics, CORS as a browser sees it."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.ml.conftest import ClientFactory, TokenFactory, slug
from tests.support.process import ServiceProcess
from tests.support.rawhttp import get_with_body, logged_levels

pytestmark = pytest.mark.integration
C = "/v1/collections"

# Every route template with the methods it answers (HEAD wherever GET).
ALLOW = {
    C: "GET, HEAD",
    C + "/{c}": "DELETE, GET, HEAD, PUT",
    C + "/{c}/documents": "GET, HEAD, POST",
    C + "/{c}/documents/d1": "DELETE, GET, HEAD, PATCH, PUT",
    C + "/{c}/documents:bulk": "POST",
    C + "/{c}/documents:count": "GET, HEAD",
    C + "/{c}/documents:sample": "GET, HEAD",
    C + "/{c}/export": "GET, HEAD",
}


@pytest.mark.parametrize("path", sorted(ALLOW))
def test_every_405_names_allow(client: httpx.Client, collection: str, path: str) -> None:
    url = path.replace("{c}", collection)
    allowed = ALLOW[path].split(", ")
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "FOO"):
        if method in allowed:
            continue
        response = client.request(method, url)
        assert response.status_code == 405, (method, url)
        assert slug(response) == "method-not-allowed"
        assert response.headers["allow"] == ALLOW[path], (method, url)


@pytest.mark.parametrize("body", [b"", b'{"ignored": true}'], ids=["length-0", "json"])
def test_a_get_with_a_body_reads_and_ignores_it(
    ml_service: ServiceProcess, token: str, collection: str, body: bytes
) -> None:
    # Sanic's GET default drained the body after the answer and logged "body not consumed"
    # at ERROR for each such request (every GET of wrk, which sends Content-Length: 0).
    request_id = f"get-body-{collection}"
    statuses = get_with_body(ml_service.port, f"{C}/{collection}", token, body, request_id)
    assert statuses == [200, 200]
    assert logged_levels(ml_service.log(), request_id) == []  # the service logs WARNING+


def test_head_answers_wherever_get_does(client: httpx.Client, collection: str) -> None:
    assert (
        client.post(f"{C}/{collection}/documents", json={"id": "d1", "data": {}}).status_code == 201
    )
    for path, allowed in ALLOW.items():
        if "GET" not in allowed:
            continue
        url = path.replace("{c}", collection)
        get, head = client.get(url), client.head(url)
        assert head.status_code == get.status_code == 200, url
        assert head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
    for url in ("/livez", "/readyz", "/metrics", "/openapi.json"):
        assert client.head(url).status_code == 200
    assert client.head(f"{C}/{collection}/documents/absent").status_code == 404


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (C, {"limt": "1"}),
        (C + "/{c}", {"x": "1"}),
        (C + "/{c}/documents", {"limt": "1"}),
        (C + "/{c}/documents", {"filters": "{}"}),
        (C + "/{c}/documents:count", {"limit": "1"}),
        (C + "/{c}/documents:count", {"fields": "a"}),
        (C + "/{c}/documents:sample", {"limit": "5"}),
        (C + "/{c}/documents/d1", {"fields": "a"}),
        (C + "/{c}/export", {"cursor": "e30"}),
        (C + "/{c}/export", {"cursor": "bm9wZQ"}),
        (C + "/{c}/export", {"limit": "5"}),
    ],
)
def test_unknown_query_parameters_are_422(
    client: httpx.Client, collection: str, path: str, params: dict[str, str]
) -> None:
    response = client.get(path.replace("{c}", collection), params=params)
    assert response.status_code == 422
    assert slug(response) == "validation-failed"
    assert response.json()["errors"][0]["loc"] == ["query", next(iter(params))]


def test_an_empty_or_repeated_parameter_is_not_ignored(
    client: httpx.Client, collection: str
) -> None:
    assert client.get(f"{C}/{collection}/documents?limt=").status_code == 422
    repeated = client.get(f"{C}/{collection}/documents?limit=1&limit=2")
    assert repeated.status_code == 422
    assert repeated.json()["errors"][0]["msg"] == "given more than once"


def test_writes_take_no_query_parameters(client: httpx.Client, collection: str) -> None:
    created = client.post(f"{C}/{collection}/documents?id=x", json={"data": {}})
    assert created.status_code == 422
    bulk = client.post(f"{C}/{collection}/documents:bulk?atomic=0", content=b'{"a":1}\n')
    assert bulk.status_code == 422
    assert client.get(f"{C}/{collection}/documents:count").json() == {"count": 0}


def test_a_token_that_is_not_utf8_is_401(new_client: ClientFactory) -> None:
    client = new_client(token=None)
    for raw in (b"Bearer \xff\xfe\xfd", b"Bearer abc.\xc3(.def"):
        response = client.get(C, headers={"Authorization": raw})
        assert response.status_code == 401
        assert slug(response) == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("subject", ["", "x" * 256])
def test_a_blank_or_overlong_subject_is_401(
    new_client: ClientFactory, make_token: TokenFactory, subject: str
) -> None:
    token = make_token("ml", "docs:read", subject=subject)
    response = new_client(token=token).get(C)
    assert response.status_code == 401
    assert "sub" in response.json()["detail"]
    assert (
        new_client(token=make_token("ml", "docs:read", subject="s" * 255)).get(C).status_code == 200
    )


def _metric_lines(client: httpx.Client, needle: str) -> list[str]:
    text = client.get("/metrics").text
    return [
        line for line in text.splitlines() if line.startswith("http_requests") and needle in line
    ]


def _wait_for(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_an_aborted_upload_is_counted_499_not_500(
    client: httpx.Client, collection: str, ml_service: ServiceProcess, token: str
) -> None:
    route = 'route="/v1/collections/<name:str>/<op:documents:bulk>"'
    head = (
        f"POST {C}/{collection}/documents:bulk HTTP/1.1\r\nHost: t\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/x-ndjson\r\n"
        "Content-Length: 100000\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", ml_service.port)) as sock:
        sock.sendall(head + b'{"a": 1}\n' * 10)
        # The handler is reading the body when the client goes away.
        _wait_for(lambda: any(
            'method="POST"' in line and not line.endswith(" 0.0")
            for line in client.get("/metrics").text.splitlines()
            if line.startswith("http_requests_in_progress")
        ))  # fmt: skip
    _wait_for(lambda: any('status="499"' in line for line in _metric_lines(client, route)))
    lines = _metric_lines(client, route)
    assert not any('status="5' in line for line in lines), lines
    assert client.get(f"{C}/{collection}/documents:count").json() == {"count": 0}


def test_invented_methods_share_one_metric_label(client: httpx.Client) -> None:
    for i in range(5):
        assert client.request(f"XMETHOD{i}", "/v1/collections").status_code == 405
    text = client.get("/metrics").text
    assert "XMETHOD" not in text
    assert 'method="other"' in text


ORIGIN = "https://app.example"


@pytest.fixture(scope="module")
def cors_service(
    ml_db: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """A 1-worker ml server with CORS on for one origin."""
    tmp: Path = tmp_path_factory.mktemp("ml-cors")
    env = {**ml_db, "STRATA_ML_CORS_ALLOWED_ORIGINS": ORIGIN}
    service = ServiceProcess("ml", env, tmp, workers=1).start()
    yield service
    service.stop()


def test_browsers_get_the_headers_they_need(cors_service: ServiceProcess, token: str) -> None:
    """A preflight for a conditional PUT, then the simple and error answers a page reads."""
    with httpx.Client(base_url=cors_service.base_url, timeout=10) as browser:
        auth = {"Authorization": f"Bearer {token}", "Origin": ORIGIN}
        name = f"cors-{time.monotonic_ns()}"
        assert browser.put(f"{C}/{name}", headers=auth).status_code == 201
        created = browser.post(f"{C}/{name}/documents", json={"id": "d", "data": {}}, headers=auth)
        preflight = browser.options(
            f"{C}/{name}/documents/d",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "authorization, content-type, if-match",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert "PUT" in preflight.headers["access-control-allow-methods"]
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert {"authorization", "content-type", "if-match"} <= {
            h.strip() for h in allowed.split(",")
        }
        stale = browser.put(
            f"{C}/{name}/documents/d", json={"data": {}}, headers={**auth, "If-Match": '"7"'}
        )
        for response in (created, stale):
            assert response.headers["access-control-allow-origin"] == ORIGIN
            exposed = {
                h.strip().lower()
                for h in response.headers["access-control-expose-headers"].split(",")
            }
            assert {"etag", "idempotent-replayed", "location", "x-request-id"} <= exposed
        assert created.headers["etag"] == '"1"'
        assert stale.status_code == 412
        assert stale.headers["etag"] == '"1"'
        stranger = browser.get(f"{C}/{name}", headers={**auth, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in stranger.headers
