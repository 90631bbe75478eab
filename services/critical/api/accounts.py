"""``/v1/accounts``: open, read, list, change status, deposit, withdraw, entries."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from services.common.cursor import encode_cursor, parse_limit
from services.critical import idempotency, ledger
from services.critical.api.deps import actor, idempotent_write, session, validated
from services.critical.api.params import accounts_after, entries_before, if_match, query_text
from services.critical.api.query import check_query
from services.critical.api.views import account_view, entry_view, transfer_view
from services.critical.schemas import AccountCreate, AccountPatch, Movement
from services.critical.web import json_response, path_uuid, principal

bp = Blueprint("accounts", __name__, url_prefix="/accounts")


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


@bp.post("")
def create_account() -> Response:
    """Open an account."""
    who = principal("accounts:write")
    check_query()
    body, _ = validated(AccountCreate)
    db = session()
    with db.begin():
        account = ledger.create_account(db, actor(who.subject), body.owner, body.currency)
    return json_response(
        account_view(account),
        201,
        {"Location": f"/v1/accounts/{account.id}", **_etag(account.version)},
    )


@bp.get("")
def list_accounts() -> Response:
    """A page of accounts, optionally of one owner."""
    principal("accounts:read")
    check_query()
    limit = parse_limit(request.args.get("limit"))
    owner = query_text("owner")
    after = accounts_after(request.args.get("cursor"))
    db = session()
    with db.begin():
        rows = ledger.list_accounts(db, owner, after, limit + 1)
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor({"c": last.created_at.isoformat(), "i": str(last.id)})
    return json_response({"items": [account_view(a) for a in items], "next_cursor": next_cursor})


@bp.get("/<account_id>")
def get_account(account_id: str) -> Response:
    """One account."""
    principal("accounts:read")
    check_query()
    db = session()
    with db.begin():
        account = ledger.get_account(db, path_uuid(account_id, "account_id"))
    return json_response(account_view(account), headers=_etag(account.version))


@bp.patch("/<account_id>")
def patch_account(account_id: str) -> Response:
    """Change an account's status, optionally only at a given version (``If-Match``)."""
    who = principal("ledger:admin")
    check_query()
    target = path_uuid(account_id, "account_id")
    body, _ = validated(AccountPatch)
    expected = if_match()
    db = session()
    with db.begin():
        account = ledger.set_status(db, actor(who.subject), target, body.status, expected)
    return json_response(account_view(account), headers=_etag(account.version))


def _movement(account_id: str, kind: str) -> Response:
    who = principal("ledger:admin")
    check_query()
    target = path_uuid(account_id, "account_id")
    body, payload = validated(Movement)
    operation = ledger.deposit if kind == "deposits" else ledger.withdraw

    def work(db: Session) -> tuple[int, dict[str, Any]]:
        record = operation(db, actor(who.subject), target, body.amount, body.reference)
        return 201, transfer_view(record)

    key = request.headers.get(idempotency.HEADER)
    if key is None:  # optional here, unlike transfers
        db = session()
        with db.begin():
            status, view = work(db)
        return json_response(view, status)
    return idempotent_write(
        who.subject,
        idempotency.check_key(key),
        idempotency.fingerprint(f"{kind}:{target}", payload),
        work,
    )


@bp.post("/<account_id>/deposits")
def deposit(account_id: str) -> Response:
    """Credit an account from outside the ledger."""
    return _movement(account_id, "deposits")


@bp.post("/<account_id>/withdrawals")
def withdraw(account_id: str) -> Response:
    """Debit an account to outside the ledger."""
    return _movement(account_id, "withdrawals")


@bp.get("/<account_id>/entries")
def entries(account_id: str) -> Response:
    """An account's ledger entries, newest first."""
    principal("accounts:read")
    check_query()
    target = path_uuid(account_id, "account_id")
    limit = parse_limit(request.args.get("limit"))
    before = entries_before(request.args.get("cursor"))
    db = session()
    with db.begin():
        rows = ledger.list_entries(db, target, before, limit + 1)
    items = rows[:limit]
    next_cursor = encode_cursor({"i": items[-1].id}) if len(rows) > limit else None
    return json_response({"items": [entry_view(e) for e in items], "next_cursor": next_cursor})
