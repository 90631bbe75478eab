"""Ledger rules: accounts, deposits, withdrawals and transfers.

Every function takes the request's session and works inside the caller's transaction.
Money moves under row locks taken in ascending account-id order, so two transfers can
never wait on each other in a cycle (no deadlocks), and balances are re-read under the
lock (no lost updates) at READ COMMITTED. Balances are never written from here: inserting
a transfer's two entries applies them (a database trigger, see migration 0002), so the
rules below are checked twice, here for a precise answer and in the database for good.

A customer transfer is first tried in one statement, ``ledger_transfer()`` (migration 0003,
``transfer_call``), which applies the rules of :func:`_move` itself and declines whatever
they refuse; only then does :func:`transfer` run, to decide and word the refusal. A rule
added here must be added there too (a new migration), or the one-call path would let
through what this one refuses; ``tests/integration/critical/test_transfers.py`` asks for
every refusal through the API.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from services.common.limits import INT64_MAX, INT64_MIN
from services.critical.errors import (
    AccountNotActiveError,
    AccountNotEmptyError,
    AccountNotFoundError,
    AmountOutOfRangeError,
    CurrencyMismatchError,
    InsufficientFundsError,
    SameAccountError,
    TransferNotFoundError,
    VersionMismatchError,
)
from services.critical.models import Account, AuditLog, Entry, Transfer

EXTERNAL_OWNER = "strata:external"
# The account kinds (from, to) each kind of transfer joins.
_SIDES = {
    "transfer": ("customer", "customer"),
    "deposit": ("external", "customer"),
    "withdrawal": ("customer", "external"),
}


@dataclass(frozen=True)
class Actor:
    """Who performs a write, for the audit trail."""

    subject: str
    request_id: str | None


def audit(session: Session, actor: Actor, action: str, resource: str, **details: Any) -> None:
    """Append an audit row in the current transaction."""
    session.add(
        AuditLog(
            actor=actor.subject,
            action=action,
            resource=resource,
            request_id=actor.request_id,
            details=details,
        )
    )


def create_account(session: Session, actor: Actor, owner: str, currency: str) -> Account:
    """Open an active customer account with a zero balance."""
    account = Account(id=uuid.uuid4(), owner=owner, currency=currency)
    session.add(account)
    session.flush()  # the INSERT returns the server defaults (models.Base: eager_defaults)
    audit(session, actor, "account.create", f"accounts/{account.id}", currency=currency)
    return account


def get_account(session: Session, account_id: uuid.UUID) -> Account:
    """A customer account; external accounts are not addressable (AccountNotFoundError)."""
    account = session.get(Account, account_id)
    if account is None or account.kind != "customer":
        raise AccountNotFoundError(account_id)
    return account


def list_accounts(
    session: Session, owner: str | None, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Account]:
    """Customer accounts in creation order, after a keyset position."""
    query = select(Account).where(Account.kind == "customer")
    if owner is not None:
        query = query.where(Account.owner == owner)
    if after is not None:
        created, last_id = after
        query = query.where(
            or_(
                Account.created_at > created,
                and_(Account.created_at == created, Account.id > last_id),
            )
        )
    query = query.order_by(Account.created_at, Account.id).limit(limit)
    return list(session.scalars(query))


def set_status(
    session: Session, actor: Actor, account_id: uuid.UUID, status: str, if_match: int | None
) -> Account:
    """Change an account's status; ``if_match`` must equal the current version when given."""
    account = session.scalars(
        select(Account)
        .where(Account.id == account_id, Account.kind == "customer")
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if account is None:
        raise AccountNotFoundError(account_id)
    if if_match is not None and if_match != account.version:
        raise VersionMismatchError(account.version, if_match)
    if status == "closed" and account.balance != 0:
        raise AccountNotEmptyError()
    previous = account.status
    account.status = status
    account.version += 1
    session.flush()  # the UPDATE sets and returns updated_at (models.Account)
    audit(session, actor, "account.status", f"accounts/{account_id}", before=previous, after=status)
    return account


def _external_account(session: Session, currency: str) -> uuid.UUID:
    """The id of the external account for ``currency``, created on first use."""
    existing = session.scalar(
        select(Account.id).where(Account.kind == "external", Account.currency == currency)
    )
    if existing is not None:
        return existing
    # Concurrent first deposits race here; the partial unique index lets exactly one win.
    session.execute(
        pg_insert(Account)
        .values(id=uuid.uuid4(), owner=EXTERNAL_OWNER, currency=currency, kind="external")
        .on_conflict_do_nothing(index_elements=["currency"], index_where=text("kind = 'external'"))
    )
    found = session.scalar(
        select(Account.id).where(Account.kind == "external", Account.currency == currency)
    )
    assert found is not None
    return found


def _move(
    session: Session,
    actor: Actor,
    *,
    kind: str,
    source: uuid.UUID,
    target: uuid.UUID,
    amount: int,
    currency: str | None,
    reference: str,
) -> Transfer:
    """Lock both accounts in id order, check the rules, write the transfer and two entries."""
    if source == target:
        raise SameAccountError()
    locked = {
        a.id: a
        for a in session.scalars(
            select(Account)
            # A transfer never even locks an external account (a hot row) for a caller
            # who names one.
            .where(Account.id.in_([source, target]), Account.kind.in_(set(_SIDES[kind])))
            .order_by(Account.id)
            .with_for_update()
            # Re-read balances under the lock even if the session saw these rows before.
            .execution_options(populate_existing=True)
        )
    }
    for account_id in (source, target):
        if account_id not in locked:
            raise AccountNotFoundError(account_id)
    src, dst = locked[source], locked[target]
    # Only customer accounts are addressable: naming an external account in a transfer
    # is answered exactly like naming one that does not exist. The database holds the
    # same rule (migration 0002).
    for account, wanted in zip((src, dst), _SIDES[kind], strict=True):
        if account.kind != wanted:
            raise AccountNotFoundError(account.id)
    currency = currency or dst.currency
    if src.currency != currency or dst.currency != currency:
        raise CurrencyMismatchError(currency, src.currency, dst.currency)
    for account in (src, dst):
        if account.status != "active":
            raise AccountNotActiveError(account.id, account.status)
    if src.kind == "customer" and src.balance < amount:
        raise InsufficientFundsError(src.id)
    if dst.balance + amount > INT64_MAX or src.balance - amount < INT64_MIN:
        raise AmountOutOfRangeError()

    transfer = Transfer(
        id=uuid.uuid4(),
        from_account=source,
        to_account=target,
        amount=amount,
        currency=currency,
        reference=reference,
        kind=kind,
    )
    session.add(transfer)
    session.flush()  # the entries reference it
    # Inserting an entry applies it to its account's balance (a database trigger checks
    # it against the transfer and against balance_after): no UPDATE from here. The
    # balances read under the row locks above are the ones the trigger starts from.
    session.add_all(
        [
            Entry(
                account_id=source,
                transfer_id=transfer.id,
                amount=-amount,
                balance_after=src.balance - amount,
            ),
            Entry(
                account_id=target,
                transfer_id=transfer.id,
                amount=amount,
                balance_after=dst.balance + amount,
            ),
        ]
    )
    # The trigger changed these columns behind the session's back.
    for account in (src, dst):
        session.expire(account, ["balance", "version", "updated_at"])
    audit(
        session,
        actor,
        f"{kind}.create",
        f"transfers/{transfer.id}",
        from_account=str(source),
        to_account=str(target),
        amount=amount,
        currency=currency,
    )
    return transfer


def transfer(
    session: Session,
    actor: Actor,
    source: uuid.UUID,
    target: uuid.UUID,
    amount: int,
    currency: str,
    reference: str,
) -> Transfer:
    """Move ``amount`` from one customer account to another of the same currency."""
    return _move(
        session,
        actor,
        kind="transfer",
        source=source,
        target=target,
        amount=amount,
        currency=currency,
        reference=reference,
    )


def _with_outside(
    session: Session,
    actor: Actor,
    account_id: uuid.UUID,
    amount: int,
    reference: str,
    *,
    kind: str,
) -> Transfer:
    """Move money between an account and the external account of its currency."""
    account = get_account(session, account_id)
    external = _external_account(session, account.currency)
    source, target = (external, account_id) if kind == "deposit" else (account_id, external)
    return _move(
        session,
        actor,
        kind=kind,
        source=source,
        target=target,
        amount=amount,
        currency=account.currency,
        reference=reference,
    )


def deposit(
    session: Session, actor: Actor, account_id: uuid.UUID, amount: int, reference: str
) -> Transfer:
    """Credit an account from the external account of its currency."""
    return _with_outside(session, actor, account_id, amount, reference, kind="deposit")


def withdraw(
    session: Session, actor: Actor, account_id: uuid.UUID, amount: int, reference: str
) -> Transfer:
    """Debit an account to the external account of its currency."""
    return _with_outside(session, actor, account_id, amount, reference, kind="withdrawal")


def get_transfer(session: Session, transfer_id: uuid.UUID) -> Transfer:
    """A transfer, or :class:`TransferNotFoundError`."""
    found = session.get(Transfer, transfer_id)
    if found is None:
        raise TransferNotFoundError(transfer_id)
    return found


def list_entries(
    session: Session, account_id: uuid.UUID, before_id: int | None, limit: int
) -> list[Entry]:
    """An account's entries, newest first, before a keyset position."""
    get_account(session, account_id)
    query = select(Entry).where(Entry.account_id == account_id)
    if before_id is not None:
        query = query.where(Entry.id < before_id)
    return list(session.scalars(query.order_by(Entry.id.desc()).limit(limit)))
