"""``/v1/transfers``: move money between accounts (idempotent), read a transfer."""

from __future__ import annotations

from typing import Any

from flask import Response
from sqlalchemy.orm import Session

from services.common.auth import Principal
from services.common.endpoint import Body, Routes
from services.critical import idempotency, ledger
from services.critical.api.declare import BODY, MOVE, PATH, REPLAYED, declare
from services.critical.api.deps import actor, idempotent_write, outcome_response
from services.critical.api.params import REQUIRED_KEY, TRANSFER, required_idempotency_key
from services.critical.api.query import check_query
from services.critical.api.views import transfer_view
from services.critical.db import session, transfers
from services.critical.schemas import TransferCreate, TransferOut
from services.critical.transfer_call import TransferRequest
from services.critical.web import json_response, path_uuid

routes = Routes()


@declare(routes, "POST", "/v1/transfers", "Transfer between two customer accounts",
         "transfers:write", (*BODY, "idempotency-key-missing", *MOVE, "insufficient-funds",
                             "currency-mismatch", "same-account"), REPLAYED,
         response=TransferOut, status=201, params=(REQUIRED_KEY,))  # fmt: skip
def create_transfer(who: Principal, body: Body[TransferCreate]) -> Response:
    """Move money; the ``Idempotency-Key`` header is required."""
    check_query()
    key = required_idempotency_key()
    fields = body()
    who_acts = actor(who.subject)

    def work(db: Session) -> tuple[int, dict[str, Any]]:
        record = ledger.transfer(
            db,
            who_acts,
            fields.from_account,
            fields.to_account,
            fields.amount,
            fields.currency,
            fields.reference,
        )
        return 201, transfer_view(record)

    fingerprint = idempotency.fingerprint("transfers", body.payload)
    # One round trip for a new transfer or a replay; a refusal is decided (and stored,
    # with its problem+json body) by the general path below.
    done = transfers().call(
        TransferRequest(
            subject=who.subject,
            key=key,
            request_hash=fingerprint,
            source=fields.from_account,
            target=fields.to_account,
            amount=fields.amount,
            currency=fields.currency,
            reference=fields.reference,
            request_id=who_acts.request_id,
        )
    )
    if done is not None:
        return outcome_response(done)
    return idempotent_write(who.subject, key, fingerprint, work)


@declare(routes, "GET", "/v1/transfers/{transfer_id}", "Get a transfer", "accounts:read",
         (*PATH, "transfer-not-found"), response=TransferOut, params=(TRANSFER,))  # fmt: skip
def get_transfer(transfer_id: str) -> Response:
    """One transfer."""
    check_query()
    db = session()
    with db.begin():
        record = ledger.get_transfer(db, path_uuid(transfer_id, "transfer_id"))
    return json_response(transfer_view(record))
