"""``/v1/transfers``: move money between accounts (idempotent), read a transfer."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy.orm import Session

from services.critical import idempotency, ledger
from services.critical.api.deps import actor, idempotent_write, session, validated
from services.critical.api.query import check_query
from services.critical.api.views import transfer_view
from services.critical.schemas import TransferCreate
from services.critical.web import json_response, path_uuid, principal

bp = Blueprint("transfers", __name__, url_prefix="/transfers")


@bp.post("")
def create_transfer() -> Response:
    """Move money; the ``Idempotency-Key`` header is required."""
    who = principal("transfers:write")
    check_query()
    key = idempotency.check_key(request.headers.get(idempotency.HEADER))
    body, payload = validated(TransferCreate)

    def work(db: Session) -> tuple[int, dict[str, Any]]:
        record = ledger.transfer(
            db,
            actor(who.subject),
            body.from_account,
            body.to_account,
            body.amount,
            body.currency,
            body.reference,
        )
        return 201, transfer_view(record)

    return idempotent_write(who.subject, key, idempotency.fingerprint("transfers", payload), work)


@bp.get("/<transfer_id>")
def get_transfer(transfer_id: str) -> Response:
    """One transfer."""
    principal("accounts:read")
    check_query()
    db = session()
    with db.begin():
        record = ledger.get_transfer(db, path_uuid(transfer_id, "transfer_id"))
    return json_response(transfer_view(record))
