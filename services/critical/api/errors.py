"""The one table from ledger refusals to problem types (status and slug; their meanings
are in :mod:`services.critical.problem_types`)."""

from __future__ import annotations

from typing import Any

from services.common.problems import Problem, Refusal, refused
from services.critical import errors

#: Every refusal of the domain layer and the problem it is answered with.
PROBLEMS: dict[type[errors.LedgerError], Refusal] = {
    errors.AccountNotFoundError: Refusal(404, "account-not-found"),
    errors.TransferNotFoundError: Refusal(404, "transfer-not-found"),
    errors.AccountNotActiveError: Refusal(409, "account-not-active"),
    errors.InsufficientFundsError: Refusal(409, "insufficient-funds"),
    errors.AccountNotEmptyError: Refusal(409, "account-not-empty"),
    errors.VersionMismatchError: Refusal(412, "version-mismatch"),
    errors.IdempotencyKeyReuseError: Refusal(422, "idempotency-key-reuse"),
    errors.CurrencyMismatchError: Refusal(422, "currency-mismatch"),
    errors.SameAccountError: Refusal(422, "same-account"),
    errors.AmountOutOfRangeError: Refusal(422, "amount-out-of-range"),
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
