"""The critical service's OpenAPI document, built from the request/response models."""

from __future__ import annotations

from typing import Any

from services.common.openapi import Operation, Param, build_openapi
from services.critical.schemas import (
    AccountCreate,
    AccountOut,
    AccountPage,
    AccountPatch,
    EntryPage,
    Movement,
    TransferCreate,
    TransferOut,
)

_UUID = {"type": "string", "format": "uuid"}
_PAGE = (
    Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}),
    Param("cursor", "query", {"type": "string"}),
)
_KEY = Param("Idempotency-Key", "header", {"type": "string", "minLength": 1, "maxLength": 255})
_ACCOUNT = Param("account_id", "path", _UUID, required=True)

OPERATIONS = (
    Operation(
        "POST",
        "/v1/accounts",
        "Open an account",
        ("accounts:write",),
        request=AccountCreate,
        response=AccountOut,
        status=201,
        errors=(400, 413, 415, 422),
    ),
    Operation(
        "GET",
        "/v1/accounts",
        "List accounts",
        ("accounts:read",),
        response=AccountPage,
        errors=(400, 422),
        params=(Param("owner", "query", {"type": "string"}), *_PAGE),
    ),
    Operation(
        "GET",
        "/v1/accounts/{account_id}",
        "Get an account",
        ("accounts:read",),
        response=AccountOut,
        errors=(404, 422),
        params=(_ACCOUNT,),
    ),
    Operation(
        "PATCH",
        "/v1/accounts/{account_id}",
        "Change an account's status",
        ("ledger:admin",),
        request=AccountPatch,
        response=AccountOut,
        errors=(400, 404, 409, 412, 415, 422),
        params=(_ACCOUNT, Param("If-Match", "header", {"type": "string"})),
    ),
    Operation(
        "POST",
        "/v1/accounts/{account_id}/deposits",
        "Deposit",
        ("ledger:admin",),
        request=Movement,
        response=TransferOut,
        status=201,
        errors=(400, 404, 409, 413, 415, 422),
        params=(_ACCOUNT, _KEY),
    ),
    Operation(
        "POST",
        "/v1/accounts/{account_id}/withdrawals",
        "Withdraw",
        ("ledger:admin",),
        request=Movement,
        response=TransferOut,
        status=201,
        errors=(400, 404, 409, 413, 415, 422),
        params=(_ACCOUNT, _KEY),
    ),
    Operation(
        "GET",
        "/v1/accounts/{account_id}/entries",
        "List an account's entries",
        ("accounts:read",),
        response=EntryPage,
        errors=(400, 404, 422),
        params=(_ACCOUNT, *_PAGE),
    ),
    Operation(
        "POST",
        "/v1/transfers",
        "Transfer money",
        ("transfers:write",),
        request=TransferCreate,
        response=TransferOut,
        status=201,
        errors=(400, 404, 409, 413, 415, 422),
        params=(Param(_KEY.name, "header", _KEY.schema, required=True),),
    ),
    Operation(
        "GET",
        "/v1/transfers/{transfer_id}",
        "Get a transfer",
        ("accounts:read",),
        response=TransferOut,
        errors=(404, 422),
        params=(Param("transfer_id", "path", _UUID, required=True),),
    ),
    Operation("GET", "/livez", "Liveness"),
    Operation("GET", "/readyz", "Readiness", errors=(503,)),
)


def document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    return build_openapi(
        title="Strata critical — accounts and transfers", version=version, operations=OPERATIONS
    )
