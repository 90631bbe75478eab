"""What the ledger refuses, in its own terms: no HTTP status is decided here.

Each refusal carries a message meant for the client. The HTTP edge
(``services.critical.api.errors``) answers every class with its problem type, from the one
table in ``services.critical.problem_types``.
"""

from __future__ import annotations

import uuid


class LedgerError(Exception):
    """A request the ledger refuses; ``str(error)`` says why, for the client."""


class AccountNotFoundError(LedgerError):
    """No customer account of that id (an external account is never addressable)."""

    def __init__(self, account_id: uuid.UUID) -> None:
        super().__init__(f"account {account_id} does not exist")


class TransferNotFoundError(LedgerError):
    """No transfer of that id."""

    def __init__(self, transfer_id: uuid.UUID) -> None:
        super().__init__(f"transfer {transfer_id} does not exist")


class VersionMismatchError(LedgerError):
    """The caller's expected version is not the account's."""

    def __init__(self, current: int, expected: int) -> None:
        super().__init__(f"account is at version {current}, not {expected}")


class AccountNotEmptyError(LedgerError):
    """Only an account with a zero balance can close."""

    def __init__(self) -> None:
        super().__init__("only an account with a zero balance can close")


class SameAccountError(LedgerError):
    """A transfer names one account on both sides."""

    def __init__(self) -> None:
        super().__init__("from_account and to_account must differ")


class CurrencyMismatchError(LedgerError):
    """The transfer's currency is not that of both accounts."""

    def __init__(self, currency: str, source: str, target: str) -> None:
        super().__init__(
            f"transfer currency {currency} does not match both accounts ({source}, {target})"
        )


class AccountNotActiveError(LedgerError):
    """An account of the movement is frozen or closed."""

    def __init__(self, account_id: uuid.UUID, status: str) -> None:
        super().__init__(f"account {account_id} is {status}")


class InsufficientFundsError(LedgerError):
    """The debited account's balance is below the amount."""

    def __init__(self, account_id: uuid.UUID) -> None:
        super().__init__(f"account {account_id} has insufficient funds")


class AmountOutOfRangeError(LedgerError):
    """A resulting balance would leave the signed 64-bit range."""

    def __init__(self) -> None:
        super().__init__("the resulting balance would not fit in a 64-bit integer")


class IdempotencyKeyReuseError(LedgerError):
    """An idempotency key already used for a different request."""

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was already used with a different request")
