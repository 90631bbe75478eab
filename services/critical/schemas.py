"""Request and response shapes (pydantic v2); they also feed the OpenAPI document."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

INT64_MAX = 2**63 - 1

CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Amount = Annotated[int, Field(gt=0, le=INT64_MAX, strict=True)]
Reference = Annotated[str, StringConstraints(max_length=200)]
Status = Literal["active", "frozen", "closed"]


class Strict(BaseModel):
    """Requests: unknown fields and type coercion are rejected."""

    model_config = ConfigDict(extra="forbid", strict=True)


class AccountCreate(Strict):
    """``POST /v1/accounts``."""

    owner: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    currency: CurrencyCode


class AccountPatch(Strict):
    """``PATCH /v1/accounts/{id}``."""

    status: Status


class Movement(Strict):
    """``POST /v1/accounts/{id}/deposits`` and ``.../withdrawals``."""

    amount: Amount
    reference: Reference = ""


class TransferCreate(Strict):
    """``POST /v1/transfers``."""

    from_account: uuid.UUID = Field(json_schema_extra={"format": "uuid"})
    to_account: uuid.UUID = Field(json_schema_extra={"format": "uuid"})
    amount: Amount
    currency: CurrencyCode
    reference: Reference = ""

    model_config = ConfigDict(extra="forbid", strict=False)  # UUIDs arrive as strings


class AccountOut(BaseModel):
    """An account as the API shows it."""

    id: uuid.UUID
    owner: str
    currency: str
    balance: int
    status: Status
    version: int
    created_at: datetime
    updated_at: datetime


class TransferOut(BaseModel):
    """A transfer (also the record a deposit or withdrawal creates)."""

    id: uuid.UUID
    from_account: uuid.UUID
    to_account: uuid.UUID
    amount: int
    currency: str
    reference: str
    created_at: datetime


class EntryOut(BaseModel):
    """One ledger entry: credit > 0, debit < 0."""

    id: int
    account_id: uuid.UUID
    transfer_id: uuid.UUID
    amount: int
    balance_after: int
    created_at: datetime


class AccountPage(BaseModel):
    """A page of accounts."""

    items: list[AccountOut]
    next_cursor: str | None


class EntryPage(BaseModel):
    """A page of entries, newest first."""

    items: list[EntryOut]
    next_cursor: str | None
