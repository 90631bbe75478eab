"""critical through clients generated from its own /openapi.json (Python, TypeScript)."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.critical.conftest import ALL
from tests.support.clients import openapi_document, python_client, typescript_check
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration

USAGE_TS = """\
import type { components, paths } from "./api";

type Transfer = components["schemas"]["TransferCreate"];
type Created = paths["/v1/transfers"]["post"]["responses"][201]["content"]["application/json"];
type Account = components["schemas"]["AccountOut"];

export const asked: Transfer = {
  from_account: "6f1c0a52-8f1e-4d8a-9b40-0d2c2f3b7a11",
  to_account: "0b5d2c0e-3a43-4a4f-8f57-5c8e0c6d8e22",
  amount: 1250,
  currency: "EUR",
  reference: "",  // openapi-typescript makes a property with a default required
};
export function balance(account: Account): number {
  return account.balance;
}
export function moved(transfer: Created): number {
  return transfer.amount;
}
"""


@pytest.fixture(scope="module")
def spec(gunicorn: ServiceProcess) -> dict[str, Any]:
    return openapi_document(gunicorn.base_url)


def test_generated_python_client_moves_money(
    gunicorn: ServiceProcess,
    spec: dict[str, Any],
    make_token: Callable[..., str],
    tmp_path: Path,
) -> None:
    name = python_client(spec, tmp_path, "strata_critical_client").__name__
    client = importlib.import_module(name).AuthenticatedClient(
        base_url=gunicorn.base_url, token=make_token("critical", *ALL, subject="generated")
    )
    models = importlib.import_module(f"{name}.models")

    def op(operation: str) -> Any:
        return importlib.import_module(f"{name}.api.default.{operation}")

    owner = f"gen-{uuid.uuid4().hex[:8]}"
    opened = [
        op("create_account").sync(
            client=client,
            body=models.AccountCreate(owner=owner, currency=models.AccountCreateCurrency("EUR")),
        )
        for _ in range(2)
    ]
    assert all(isinstance(a, models.AccountOut) for a in opened)
    source, target = opened
    funded = op("deposit").sync(source.id, client=client, body=models.Movement(amount=5000))
    assert isinstance(funded, models.TransferOut)
    asked = models.TransferCreate(
        from_account=source.id, to_account=target.id, amount=1250, currency="EUR"
    )
    key = uuid.uuid4().hex
    moved = op("create_transfer").sync_detailed(client=client, body=asked, idempotency_key=key)
    assert moved.status_code == 201
    replayed = op("create_transfer").sync_detailed(client=client, body=asked, idempotency_key=key)
    assert replayed.status_code == 201
    assert replayed.parsed.id == moved.parsed.id
    assert op("get_account").sync(source.id, client=client).balance == 3750
    got = op("get_account").sync_detailed(target.id, client=client)
    assert got.parsed.balance == 1250
    held = op("get_account").sync_detailed(
        target.id, client=client, if_none_match=got.headers["etag"]
    )
    assert held.status_code == 304
    refused = op("create_transfer").sync(
        client=client,
        body=models.TransferCreate(
            from_account=target.id, to_account=source.id, amount=10**9, currency="EUR"
        ),
        idempotency_key=uuid.uuid4().hex,
    )
    assert isinstance(refused, models.Problem)
    assert refused.type_ == "urn:strata:problem:insufficient-funds"


def test_generated_typescript_types_compile(spec: dict[str, Any], tmp_path: Path) -> None:
    typescript_check(spec, tmp_path, USAGE_TS)
