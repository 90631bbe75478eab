"""The cache service through clients generated from its own /openapi.json (Python, TypeScript)."""

from __future__ import annotations

import importlib
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import openapi_document, python_client, typescript_check
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration

USAGE_TS = """\
import type { components, paths } from "./api";

type Entry = components["schemas"]["Entry"];
type Got = paths["/v1/kv/{key}"]["get"]["responses"][200]["content"]["application/json"];
type Missing = paths["/v1/kv/{key}"]["get"]["responses"][404];
type Refused = Missing["content"]["application/problem+json"];

const entry: Entry = { key: "k", value: { any: ["json"] }, ttl: null };
export const got: Got = entry;
export const refused: Refused = {
  type: "urn:strata:problem:key-not-found",
  title: "Not Found",
  status: 404,
  detail: "no value is stored under this key",
};
"""


@pytest.fixture(scope="module")
def spec(cache_service: ServiceProcess) -> dict[str, Any]:
    return openapi_document(cache_service.base_url)


def test_generated_python_client_against_the_service(
    cache_service: ServiceProcess, spec: dict[str, Any], rw_token: str, tmp_path: Path
) -> None:
    name = python_client(spec, tmp_path, "strata_cache_client").__name__
    client = importlib.import_module(name).AuthenticatedClient(
        base_url=cache_service.base_url, token=rw_token
    )
    models = importlib.import_module(f"{name}.models")
    ops = {
        op: importlib.import_module(f"{name}.api.default.{op}")
        for op in ("put_value", "get_value", "delete_value", "incr_counter")
    }
    key = f"gen-{uuid.uuid4().hex[:8]}"
    body = models.PutValue(value={"nested": [1, 2**63, None]}, ttl=60)
    stored = ops["put_value"].sync_detailed(key, client=client, body=body)
    assert stored.status_code == 200
    assert isinstance(stored.parsed, models.Entry)
    got = ops["get_value"].sync(key, client=client)
    assert isinstance(got, models.Entry)
    assert got.value == {"nested": [1, 2**63, None]}
    assert 0 < got.ttl <= 60
    held = ops["get_value"].sync_detailed(key, client=client, if_none_match=stored.headers["etag"])
    assert held.status_code == 304
    incr = ops["incr_counter"].sync(key, client=client, body=models.IncrRequest(by=5))
    assert isinstance(incr, models.CounterValue)
    assert incr.value == 5
    assert ops["delete_value"].sync_detailed(key, client=client).status_code == 204
    missing = ops["get_value"].sync(key, client=client)
    assert isinstance(missing, models.Problem)
    assert missing.type_ == "urn:strata:problem:key-not-found"


def test_generated_typescript_types_compile(spec: dict[str, Any], tmp_path: Path) -> None:
    typescript_check(spec, tmp_path, USAGE_TS)
