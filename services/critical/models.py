"""The ledger schema as SQLAlchemy 2 typed models.

The database holds the integrity rules too: CHECKs, foreign keys, unique keys, a
deferred trigger that every transfer has exactly one debit and one credit, and (revision
0002) triggers by which a balance changes only when an entry matching a transfer of the
right account kinds is inserted, which applies it and checks ``balance_after``. The
application never writes ``Account.balance``; the runtime role may not. The migrations
in ``migrations/`` create exactly these tables.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    func,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.orm import TYPE_ANNOTATION_MAP, new_metadata

UUIDPk = Annotated[uuid.UUID, mapped_column(UUID(as_uuid=True), primary_key=True)]
Money = Annotated[int, mapped_column(BigInteger, nullable=False)]
Created = Annotated[
    datetime, mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
]
Currency = Annotated[str, mapped_column(String(3), nullable=False)]


class Base(DeclarativeBase):
    """Declarative base with stable constraint names for Alembic."""

    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP
    # Server defaults (timestamps, identities) come back in the INSERT's RETURNING clause:
    # no extra SELECT to build a response.
    __mapper_args__ = {"eager_defaults": True}


class Account(Base):
    """A customer account, or the per-currency external account money enters from."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("kind = 'external' OR balance >= 0", name="balance_non_negative"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_format"),
        CheckConstraint("status IN ('active', 'frozen', 'closed')", name="status_valid"),
        CheckConstraint("kind IN ('customer', 'external')", name="kind_valid"),
        CheckConstraint("char_length(owner) BETWEEN 1 AND 200", name="owner_length"),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_accounts_owner_created", "owner", "created_at", "id"),
        Index("ix_accounts_created", "created_at", "id"),
        Index(
            "uq_accounts_external_currency",
            "currency",
            unique=True,
            postgresql_where="kind = 'external'",
        ),
    )

    id: Mapped[UUIDPk]
    owner: Mapped[str] = mapped_column(String(200))
    currency: Mapped[Currency]
    # Written only by the entries trigger (migration 0002); an account opens with zero.
    balance: Mapped[Money] = mapped_column(server_default="0")
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    kind: Mapped[str] = mapped_column(String(16), server_default="customer")
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[Created]
    # Set by the database on every ORM UPDATE (a status change), returned by the UPDATE.
    updated_at: Mapped[Created] = mapped_column(onupdate=func.now())


class Transfer(Base):
    """A movement of money between two accounts (deposits and withdrawals included)."""

    __tablename__ = "transfers"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("from_account <> to_account", name="distinct_accounts"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_format"),
        CheckConstraint("kind IN ('transfer', 'deposit', 'withdrawal')", name="kind_valid"),
    )

    id: Mapped[UUIDPk]
    from_account: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    to_account: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[Money]
    currency: Mapped[Currency]
    reference: Mapped[str] = mapped_column(String(200), server_default="")
    kind: Mapped[str] = mapped_column(String(16), server_default="transfer")
    created_at: Mapped[Created]


class Entry(Base):
    """One side of a transfer on one account; balances are recomputable from these."""

    __tablename__ = "entries"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_nonzero"),
        Index("ix_entries_account_id_desc", "account_id", "id"),
        Index("uq_entries_transfer_account", "transfer_id", "account_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"))
    transfer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("transfers.id"))
    amount: Mapped[Money]
    balance_after: Mapped[Money]
    created_at: Mapped[Created]


class IdempotencyKey(Base):
    """The stored outcome of a request made with an ``Idempotency-Key`` (per token subject)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (CheckConstraint("char_length(key) BETWEEN 1 AND 255", name="key_length"),)

    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]]
    created_at: Mapped[Created]


class AuditLog(Base):
    """Append-only record of every write; the runtime role may only INSERT and SELECT."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    resource: Mapped[str] = mapped_column(String(255))
    request_id: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    at: Mapped[Created]
