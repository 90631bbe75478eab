"""``/v1/accounts``: open, read, list, change status, deposit, withdraw, entries."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from sqlalchemy.orm import Session

from services.common.auth import Principal
from services.common.cursor import page, parse_limit
from services.common.endpoint import Body, Routes
from services.critical import idempotency, ledger, reads
from services.critical.api.declare import BODY, ETAG, HEADER, LIST, MOVE, PATH, REPLAYED, declare
from services.critical.api.deps import actor, idempotent_write
from services.critical.api.params import (
    ACCOUNT,
    IF_MATCH,
    KEY,
    OWNER,
    PAGE,
    accounts_after,
    entries_before,
    idempotency_key,
    if_match,
    query_text,
)
from services.critical.api.query import check_query
from services.critical.api.views import account_view, entry_view, transfer_view
from services.critical.db import session
from services.critical.schemas import (
    AccountCreate,
    AccountOut,
    AccountPage,
    AccountPatch,
    EntryPage,
    Movement,
    TransferOut,
)
from services.critical.web import json_response, path_uuid

routes = Routes()
_ACCOUNTS = "/v1/accounts"
_ACCOUNT = _ACCOUNTS + "/{account_id}"


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


@declare(routes, "POST", _ACCOUNTS, "Open an account", "accounts:write", BODY,
         {**ETAG, "Location": HEADER}, response=AccountOut, status=201)  # fmt: skip
def create_account(who: Principal, body: Body[AccountCreate]) -> Response:
    """Open an account."""
    check_query()
    fields = body()
    db = session()
    with db.begin():
        account = ledger.create_account(db, actor(who.subject), fields.owner, fields.currency)
    return json_response(
        account_view(account),
        201,
        {"Location": f"/v1/accounts/{account.id}", **_etag(account.version)},
    )


@declare(routes, "GET", _ACCOUNTS, "List accounts (oldest first)", "accounts:read", LIST,
         response=AccountPage, params=(OWNER, *PAGE))  # fmt: skip
def list_accounts() -> Response:
    """A page of accounts, optionally of one owner."""
    check_query()
    limit = parse_limit(request.args.get("limit"))
    owner = query_text("owner")
    after = accounts_after(request.args.get("cursor"))
    db = session()
    with db.begin():
        rows = ledger.list_accounts(db, owner, after, limit + 1)
    items, cursor = page(rows, limit, lambda a: {"c": a.created_at.isoformat(), "i": str(a.id)})
    return json_response({"items": [account_view(a) for a in items], "next_cursor": cursor})


@declare(routes, "GET", _ACCOUNT, "Get an account", "accounts:read",
         (*PATH, "account-not-found"), ETAG, response=AccountOut, params=(ACCOUNT,))  # fmt: skip
def get_account(account_id: str) -> Response:
    """One account."""
    check_query()
    target = path_uuid(account_id, "account_id")
    view = reads.run_read(lambda conn: reads.account(conn, target))
    return json_response(view, headers=_etag(view["version"]))


@declare(routes, "PATCH", _ACCOUNT, "Change an account's status", "ledger:admin",
         (*PATH, *BODY, "account-not-found", "account-not-empty", "version-mismatch"), ETAG,
         response=AccountOut, params=(ACCOUNT, IF_MATCH))  # fmt: skip
def patch_account(who: Principal, account_id: str, body: Body[AccountPatch]) -> Response:
    """Change an account's status, optionally only at a given version (``If-Match``)."""
    check_query()
    target = path_uuid(account_id, "account_id")
    status = body().status
    expected = if_match()
    db = session()
    with db.begin():
        account = ledger.set_status(db, actor(who.subject), target, status, expected)
    return json_response(account_view(account), headers=_etag(account.version))


def _movement(who: Principal, account_id: str, body: Body[Movement], kind: str) -> Response:
    check_query()
    target = path_uuid(account_id, "account_id")
    fields = body()
    operation = ledger.deposit if kind == "deposits" else ledger.withdraw

    def work(db: Session) -> tuple[int, dict[str, Any]]:
        record = operation(db, actor(who.subject), target, fields.amount, fields.reference)
        return 201, transfer_view(record)

    key = idempotency_key()
    if key is None:  # optional here, unlike transfers
        db = session()
        with db.begin():
            status, view = work(db)
        return json_response(view, status)
    return idempotent_write(
        who.subject,
        key,
        idempotency.fingerprint(f"{kind}:{target}", body.payload),
        work,
    )


@declare(routes, "POST", _ACCOUNT + "/deposits", "Deposit from outside the ledger",
         "ledger:admin", (*PATH, *BODY, *MOVE), REPLAYED, response=TransferOut, status=201,
         params=(ACCOUNT, KEY))  # fmt: skip
def deposit(who: Principal, account_id: str, body: Body[Movement]) -> Response:
    """Credit an account from outside the ledger."""
    return _movement(who, account_id, body, "deposits")


@declare(routes, "POST", _ACCOUNT + "/withdrawals", "Withdraw to outside the ledger",
         "ledger:admin", (*PATH, *BODY, *MOVE, "insufficient-funds"), REPLAYED,
         response=TransferOut, status=201, params=(ACCOUNT, KEY))  # fmt: skip
def withdraw(who: Principal, account_id: str, body: Body[Movement]) -> Response:
    """Debit an account to outside the ledger."""
    return _movement(who, account_id, body, "withdrawals")


@declare(routes, "GET", _ACCOUNT + "/entries", "List an account's entries (newest first)",
         "accounts:read", (*PATH, *LIST, "account-not-found"), response=EntryPage,
         params=(ACCOUNT, *PAGE))  # fmt: skip
def entries(account_id: str) -> Response:
    """An account's ledger entries, newest first."""
    check_query()
    target = path_uuid(account_id, "account_id")
    limit = parse_limit(request.args.get("limit"))
    before = entries_before(request.args.get("cursor"))
    db = session()
    with db.begin():
        rows = ledger.list_entries(db, target, before, limit + 1)
    items, cursor = page(rows, limit, lambda e: {"i": e.id})
    return json_response({"items": [entry_view(e) for e in items], "next_cursor": cursor})
