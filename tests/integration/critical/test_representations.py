"""Conditional GET (ETag, If-None-Match, 304), gzip of large JSON, and /docs on critical."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from flask.testing import FlaskClient

from services.common import apidocs
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration

Auth = Callable[..., dict[str, str]]


def test_account_get_answers_304_while_the_version_holds(
    client: FlaskClient, auth: Auth, account: Callable[..., dict[str, Any]]
) -> None:
    opened = account(balance=100)
    url = f"/v1/accounts/{opened['id']}"
    first = client.get(url, headers=auth())
    etag = first.headers["ETag"]
    assert etag == f'"{opened["version"]}"'
    held = client.get(url, headers=auth(**{"If-None-Match": etag}))
    assert held.status_code == 304
    assert held.data == b""
    assert held.headers["ETag"] == etag
    # A weak form, a list, and * all name it (weak comparison, RFC 9110).
    for header in (f"W/{etag}", f'"nope", {etag}', "*"):
        assert client.get(url, headers=auth(**{"If-None-Match": header})).status_code == 304
    # A deposit moves the balance and the version: the held copy is stale now.
    client.post(f"{url}/deposits", json={"amount": 5, "reference": "r"}, headers=auth())
    fresh = client.get(url, headers=auth(**{"If-None-Match": etag}))
    assert fresh.status_code == 200
    assert fresh.json["balance"] == 105  # type: ignore[index]
    assert fresh.headers["ETag"] != etag


def test_304_needs_the_token_and_an_existing_account(client: FlaskClient, auth: Auth) -> None:
    missing = "/v1/accounts/00000000-0000-4000-8000-000000000000"
    assert client.get(missing, headers=auth(**{"If-None-Match": "*"})).status_code == 404
    assert client.get(missing, headers={"If-None-Match": "*"}).status_code == 401


def test_large_json_is_gzipped_when_accepted(
    client: FlaskClient, auth: Auth, account: Callable[..., dict[str, Any]]
) -> None:
    owner = "gzip-owner"
    for _ in range(12):
        account(owner=owner)
    url = f"/v1/accounts?owner={owner}&limit=100"
    plain = client.get(url, headers=auth())
    assert plain.status_code == 200
    assert len(plain.data) >= 1024  # over the default gzip_min_bytes
    assert "Content-Encoding" not in plain.headers
    assert "Accept-Encoding" in plain.headers["Vary"]
    packed = client.get(url, headers=auth(**{"Accept-Encoding": "br, gzip;q=0.5"}))
    assert packed.headers["Content-Encoding"] == "gzip"
    assert int(packed.headers["Content-Length"]) == len(packed.data) < len(plain.data)
    assert gzip.decompress(packed.data) == plain.data
    refused = client.get(url, headers=auth(**{"Accept-Encoding": "gzip;q=0, identity"}))
    assert "Content-Encoding" not in refused.headers


def test_small_answers_stay_identity(
    client: FlaskClient, auth: Auth, account: Callable[..., dict[str, Any]]
) -> None:
    opened = account()
    got = client.get(f"/v1/accounts/{opened['id']}", headers=auth(**{"Accept-Encoding": "gzip"}))
    assert "Content-Encoding" not in got.headers
    assert got.headers["ETag"] == f'"{opened["version"]}"'


def test_openapi_declares_the_conditional_get(client: FlaskClient) -> None:
    doc: dict[str, Any] = client.get("/openapi.json").json  # type: ignore[assignment]
    get = doc["paths"]["/v1/accounts/{account_id}"]["get"]
    assert "304" in get["responses"]
    assert "If-None-Match" in {p["name"] for p in get["parameters"]}
    assert "304" not in doc["paths"]["/v1/accounts"]["get"]["responses"]  # no ETag there


def test_docs_served_from_the_image_under_gunicorn(gunicorn: ServiceProcess) -> None:
    with httpx.Client(base_url=gunicorn.base_url, timeout=10) as http:
        home = http.get("/docs")
        assert home.status_code == 308
        assert home.headers["location"] == "/docs/critical/"
        page = http.get("/docs/critical/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert 'src="swagger-ui-bundle.js"' in page.text
        spec = http.get("/docs/critical/openapi.json")
        assert spec.json() == http.get("/openapi.json").json()
        for name in apidocs.asset_names():
            raw = http.get(f"/docs/critical/{name}", headers={"Accept-Encoding": "identity"})
            assert raw.status_code == 200, name
            assert raw.content == apidocs.asset(name).body
            packed = http.get(f"/docs/critical/{name}", headers={"Accept-Encoding": "gzip"})
            assert packed.headers["content-encoding"] == "gzip"
            assert packed.content == raw.content  # httpx decodes it
        assert b"SwaggerUIBundle" in http.get("/docs/critical/swagger-ui-bundle.js").content
        assert http.get("/docs/critical/secret.txt").status_code == 404
