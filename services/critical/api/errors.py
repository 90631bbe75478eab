"""The one table from ledger refusals to problem types (status and slug)."""

from __future__ import annotations

from typing import Any

from services.common.problems import Problem, refused
from services.critical import errors

#: Every refusal of the domain layer and the problem it is answered with.
PROBLEMS: dict[type[errors.LedgerError], tuple[int, str]] = {
    errors.AccountNotFoundError: (404, "account-not-found"),
    errors.TransferNotFoundError: (404, "transfer-not-found"),
    errors.AccountNotActiveError: (409, "account-not-active"),
    errors.InsufficientFundsError: (409, "insufficient-funds"),
    errors.AccountNotEmptyError: (409, "account-not-empty"),
    errors.VersionMismatchError: (412, "version-mismatch"),
    errors.IdempotencyKeyReuseError: (422, "idempotency-key-reuse"),
    errors.CurrencyMismatchError: (422, "currency-mismatch"),
    errors.SameAccountError: (422, "same-account"),
    errors.AmountOutOfRangeError: (422, "amount-out-of-range"),
}


def problem(refusal: errors.LedgerError) -> Problem:
    """The problem a refusal is answered with."""
    found = refused(refusal, PROBLEMS)
    if found is None:  # a refusal the table forgot: tests/unit/common/test_refusals.py
        raise TypeError(f"no problem type for {type(refusal).__name__}") from refusal
    return found


def answer(refusal: errors.LedgerError) -> tuple[int, dict[str, Any]]:
    """A refusal as the (status, body) an idempotency key stores."""
    found = problem(refusal)
    return found.status, found.to_dict()
