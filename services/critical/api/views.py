"""Turn ORM rows into the API's JSON shapes (validated by the response models)."""

from __future__ import annotations

from typing import Any

from services.critical.models import Account, Entry, Transfer
from services.critical.schemas import AccountOut, EntryOut, TransferOut


def account_view(account: Account) -> dict[str, Any]:
    """An account as the API shows it."""
    return AccountOut.model_validate(account, from_attributes=True).model_dump(mode="json")


def transfer_view(transfer: Transfer) -> dict[str, Any]:
    """A transfer as the API shows it."""
    return TransferOut.model_validate(transfer, from_attributes=True).model_dump(mode="json")


def entry_view(entry: Entry) -> dict[str, Any]:
    """A ledger entry as the API shows it."""
    return EntryOut.model_validate(entry, from_attributes=True).model_dump(mode="json")
