"""The OpenAPI document describes every route the app serves."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient


def test_openapi_lists_every_v1_route_with_its_methods(app: Flask, client: FlaskClient) -> None:
    document = client.get("/openapi.json").json
    assert document["openapi"].startswith("3.")
    served = {
        (re.sub(r"<([^>]+)>", r"{\1}", rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/v1")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {
        (path, method.upper())
        for path, ops in document["paths"].items()
        if path.startswith("/v1")
        for method in ops
    }
    assert served == documented


def test_openapi_schemas_resolve(client: FlaskClient) -> None:
    document = client.get("/openapi.json").json
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', str(document).replace("'", '"')))
    assert refs <= set(document["components"]["schemas"])
    transfer = document["paths"]["/v1/transfers"]["post"]
    assert transfer["security"] == [{"bearer": ["transfers:write"]}]
    assert {"201", "401", "403", "409", "422"} <= set(transfer["responses"])
