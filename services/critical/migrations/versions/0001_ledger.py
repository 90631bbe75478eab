"""The ledger: accounts, transfers, entries, idempotency keys, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TWO_ENTRIES = """
CREATE FUNCTION ledger_check_transfer_entries() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
    total numeric;
BEGIN
    SELECT count(*), coalesce(sum(amount), 0) INTO n, total
      FROM entries WHERE transfer_id = NEW.id;
    IF n <> 2 OR total <> 0 THEN
        RAISE EXCEPTION 'transfer % must have one debit and one credit (found %, sum %)',
            NEW.id, n, total USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER transfers_have_two_entries
    AFTER INSERT ON transfers DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_transfer_entries();
"""

_APPEND_ONLY = """
CREATE FUNCTION ledger_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER transfers_append_only BEFORE UPDATE OR DELETE ON transfers
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
"""


def _created() -> sa.Column[object]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )


def upgrade() -> None:
    """Create the ledger schema with its constraints and triggers."""
    op.create_table(
        "accounts",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("balance", sa.BigInteger, server_default="0", nullable=False),
        sa.Column("status", sa.String(16), server_default="active", nullable=False),
        sa.Column("kind", sa.String(16), server_default="customer", nullable=False),
        sa.Column("version", sa.Integer, server_default="1", nullable=False),
        _created(),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("kind = 'external' OR balance >= 0", name="balance_non_negative"),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_format"),
        sa.CheckConstraint("status IN ('active', 'frozen', 'closed')", name="status_valid"),
        sa.CheckConstraint("kind IN ('customer', 'external')", name="kind_valid"),
        sa.CheckConstraint("char_length(owner) BETWEEN 1 AND 200", name="owner_length"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
    )
    op.create_index("ix_accounts_owner_created", "accounts", ["owner", "created_at", "id"])
    op.create_index("ix_accounts_created", "accounts", ["created_at", "id"])
    op.create_index(
        "uq_accounts_external_currency",
        "accounts",
        ["currency"],
        unique=True,
        postgresql_where=sa.text("kind = 'external'"),
    )

    op.create_table(
        "transfers",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "from_account",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("accounts.id"),
            nullable=False,
        ),
        sa.Column(
            "to_account",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("accounts.id"),
            nullable=False,
        ),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reference", sa.String(200), server_default="", nullable=False),
        sa.Column("kind", sa.String(16), server_default="transfer", nullable=False),
        _created(),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.CheckConstraint("from_account <> to_account", name="distinct_accounts"),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="currency_format"),
        sa.CheckConstraint("kind IN ('transfer', 'deposit', 'withdrawal')", name="kind_valid"),
    )
    op.create_index("ix_transfers_from_account", "transfers", ["from_account"])
    op.create_index("ix_transfers_to_account", "transfers", ["to_account"])

    op.create_table(
        "entries",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column(
            "account_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("accounts.id"),
            nullable=False,
        ),
        sa.Column(
            "transfer_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("transfers.id"),
            nullable=False,
        ),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("balance_after", sa.BigInteger, nullable=False),
        _created(),
        sa.CheckConstraint("amount <> 0", name="amount_nonzero"),
    )
    op.create_index("ix_entries_account_id_desc", "entries", ["account_id", "id"])
    op.create_index(
        "uq_entries_transfer_account", "entries", ["transfer_id", "account_id"], unique=True
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("subject", sa.String(255), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", postgresql.JSONB, nullable=False),
        _created(),
        sa.CheckConstraint("char_length(key) BETWEEN 1 AND 255", name="key_length"),
    )

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("resource", sa.String(255), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("details", postgresql.JSONB, server_default="{}", nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.execute(_TWO_ENTRIES)
    op.execute(_APPEND_ONLY)


def downgrade() -> None:
    """Drop everything (destroys the ledger: for development databases only)."""
    for table in ("audit_log", "idempotency_keys", "entries", "transfers", "accounts"):
        op.drop_table(table)
    op.execute("DROP FUNCTION IF EXISTS ledger_check_transfer_entries()")
    op.execute("DROP FUNCTION IF EXISTS ledger_append_only()")
