"""Request and response shapes (pydantic v2); they also feed the OpenAPI document."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic import StringConstraints as Length
from pydantic_core import PydanticCustomError

from services.common.limits import INT64_MAX
from services.critical.currencies import active_codes, is_active


def _no_nul(value: str) -> str:
    """PostgreSQL text cannot hold U+0000: refuse it here, naming the field."""
    if "\x00" in value:
        raise PydanticCustomError("string_nul", "must not contain the NUL character (U+0000)")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("string_blank", "must not be blank")
    return value


def _iso4217(value: str) -> str:
    if not is_active(value):
        raise PydanticCustomError(
            "currency_unknown", "must be an ISO 4217 currency code with minor units, e.g. EUR"
        )
    return value


def _int64(value: object) -> object:
    """Say the bound for integers past int64 (JSON integers past 64 bits arrive as floats)."""
    too_big = isinstance(value, int) and not isinstance(value, bool) and value > INT64_MAX
    if too_big or (isinstance(value, float) and abs(value) > INT64_MAX):
        raise PydanticCustomError(
            "int64_range", f"must be an integer from 1 to {INT64_MAX} (a signed 64-bit integer)"
        )
    return value


# The pattern documents the NUL rule for clients (the validator enforces it).
Text = Annotated[
    str, AfterValidator(_no_nul), Field(json_schema_extra={"pattern": "^[^\\u0000]*$"})
]
CurrencyCode = Annotated[str, Length(pattern=r"^[A-Z]{3}$")]
IsoCurrency = Annotated[
    CurrencyCode,
    AfterValidator(_iso4217),
    Field(json_schema_extra={"enum": sorted(active_codes())}),
]
Owner = Annotated[
    Text,
    Length(min_length=1, max_length=200),
    AfterValidator(_not_blank),
    Field(description="1..200 characters, not only whitespace, no NUL"),
]
# Field first: a validator before it would leave gt/le unapplied in the JSON schema.
Amount = Annotated[int, Field(gt=0, le=INT64_MAX, strict=True), BeforeValidator(_int64)]
Reference = Annotated[Text, Length(max_length=200), Field(description="up to 200 characters")]
Status = Literal["active", "frozen", "closed"]


class Strict(BaseModel):
    """Requests: unknown fields and type coercion are rejected."""

    model_config = ConfigDict(extra="forbid", strict=True)


class AccountCreate(Strict):
    """``POST /v1/accounts``."""

    owner: Owner
    currency: IsoCurrency


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
