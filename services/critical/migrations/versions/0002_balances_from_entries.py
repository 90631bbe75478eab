"""Every balance change is explained by the entries of a balanced transfer, in the database.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Until now ``ledger.py`` updated balances itself and the runtime role could
``UPDATE accounts SET balance = ...``; a transfer could also join an external account.
From this revision on the database enforces, whoever writes:

* a transfer joins accounts of the kinds its own kind allows (``transfer``: customer to
  customer; ``deposit``: external to customer; ``withdrawal``: customer to external), all
  in the transfer's currency (``transfers_join_the_right_accounts``);
* an entry must match its transfer (its account is the transfer's from or to side; the
  amount is ``-amount`` on the from side, ``+amount`` on the to side), and inserting it
  applies it to the account's balance, checks ``balance_after`` and bumps the version
  (``entries_apply_to_balances``, SECURITY DEFINER so the runtime role needs no UPDATE
  on ``balance``); the deferred check that a transfer has exactly one debit and one
  credit stays;
* a balance changes only from inside that trigger, and an account opens with zero
  (``accounts_balance_from_entries``, ``accounts_open_empty``: they hold for the owner
  role too, short of it disabling triggers).

``migrate`` grants the runtime role column-level UPDATE on ``accounts`` (status, version,
updated_at) only. The upgrade runs in place and refuses a database whose balances do not
already equal the sum of their entries.
"""

from __future__ import annotations

import logging

from alembic import op
from sqlalchemy import text

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

logger = logging.getLogger(__name__)

# Every function pins its search_path with pg_temp last: otherwise a role allowed to
# create temporary tables could shadow ``accounts`` or ``entries`` for the trigger.
_FUNCTIONS = """
CREATE FUNCTION ledger_check_transfer_accounts() RETURNS trigger
LANGUAGE plpgsql SET search_path = {path} AS $$
DECLARE
    src_kind text;
    src_currency text;
    dst_kind text;
    dst_currency text;
BEGIN
    SELECT kind, currency INTO src_kind, src_currency FROM accounts WHERE id = NEW.from_account;
    SELECT kind, currency INTO dst_kind, dst_currency FROM accounts WHERE id = NEW.to_account;
    IF src_kind IS NULL OR dst_kind IS NULL THEN
        RETURN NEW;  -- the foreign keys report the missing account
    END IF;
    IF (src_kind, dst_kind) IS DISTINCT FROM (
        CASE NEW.kind WHEN 'deposit' THEN 'external' ELSE 'customer' END,
        CASE NEW.kind WHEN 'withdrawal' THEN 'external' ELSE 'customer' END
    ) THEN
        RAISE EXCEPTION 'a % cannot move money from an account of kind % to one of kind %',
            NEW.kind, src_kind, dst_kind USING ERRCODE = 'check_violation';
    END IF;
    IF src_currency <> NEW.currency OR dst_currency <> NEW.currency THEN
        RAISE EXCEPTION 'transfer currency % does not match its accounts (%, %)',
            NEW.currency, src_currency, dst_currency USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION ledger_apply_entry() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {path} AS $$
DECLARE
    t transfers%ROWTYPE;
    new_balance bigint;
BEGIN
    SELECT * INTO t FROM transfers WHERE id = NEW.transfer_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'entry for unknown transfer %', NEW.transfer_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF NOT ((NEW.account_id = t.from_account AND NEW.amount = -t.amount)
            OR (NEW.account_id = t.to_account AND NEW.amount = t.amount)) THEN
        RAISE EXCEPTION 'entry (% on %) does not match transfer %',
            NEW.amount, NEW.account_id, t.id USING ERRCODE = 'check_violation';
    END IF;
    UPDATE accounts
       SET balance = balance + NEW.amount, version = version + 1, updated_at = now()
     WHERE id = NEW.account_id
     RETURNING balance INTO new_balance;
    IF NEW.balance_after IS DISTINCT FROM new_balance THEN
        RAISE EXCEPTION 'entry balance_after % but the account now holds %',
            NEW.balance_after, new_balance USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
REVOKE ALL ON FUNCTION ledger_apply_entry() FROM PUBLIC;

CREATE FUNCTION ledger_guard_balance() RETURNS trigger
LANGUAGE plpgsql SET search_path = {path} AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        RAISE EXCEPTION 'an account opens with a zero balance'
            USING ERRCODE = 'check_violation';
    END IF;
    -- Depth 1 is a statement on accounts itself; ledger_apply_entry runs at depth 2.
    IF pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'a balance changes only by inserting ledger entries'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION ledger_check_transfer_entries() RETURNS trigger
LANGUAGE plpgsql SET search_path = {path} AS $$
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
"""

_TRIGGERS = """
CREATE TRIGGER transfers_join_the_right_accounts BEFORE INSERT ON transfers
    FOR EACH ROW EXECUTE FUNCTION ledger_check_transfer_accounts();
CREATE TRIGGER entries_apply_to_balances BEFORE INSERT ON entries
    FOR EACH ROW EXECUTE FUNCTION ledger_apply_entry();
CREATE TRIGGER accounts_open_empty BEFORE INSERT ON accounts
    FOR EACH ROW WHEN (NEW.balance <> 0) EXECUTE FUNCTION ledger_guard_balance();
CREATE TRIGGER accounts_balance_from_entries BEFORE UPDATE OF balance ON accounts
    FOR EACH ROW WHEN (OLD.balance IS DISTINCT FROM NEW.balance)
    EXECUTE FUNCTION ledger_guard_balance();
"""

_UNEXPLAINED = """
SELECT a.id::text FROM accounts a
  LEFT JOIN (SELECT account_id, sum(amount) AS total FROM entries GROUP BY account_id) e
    ON e.account_id = a.id
 WHERE a.balance <> coalesce(e.total, 0)
 ORDER BY a.id LIMIT 10
"""

_WRONG_KINDS = """
SELECT count(*) FROM transfers t
  JOIN accounts s ON s.id = t.from_account
  JOIN accounts d ON d.id = t.to_account
 WHERE (s.kind, d.kind) IS DISTINCT FROM (
        CASE t.kind WHEN 'deposit' THEN 'external' ELSE 'customer' END,
        CASE t.kind WHEN 'withdrawal' THEN 'external' ELSE 'customer' END)
"""


def upgrade() -> None:
    """Check the ledger as it stands, then install the balance triggers."""
    bind = op.get_bind()
    unexplained = bind.execute(text(_UNEXPLAINED)).scalars().all()
    if unexplained:
        raise RuntimeError(
            "refusing to upgrade: these accounts' balances differ from the sum of their "
            f"entries: {', '.join(unexplained)}"
        )
    wrong = bind.execute(text(_WRONG_KINDS)).scalar_one()
    if wrong:
        # History is append-only: keep these rows, but say so (they predate the rule).
        logger.warning(
            "%d existing transfers join accounts of the wrong kind (before revision 0002)", wrong
        )
    schema = bind.execute(text("SELECT quote_ident(current_schema())")).scalar_one()
    op.execute(_FUNCTIONS.replace("{path}", f"{schema}, pg_temp"))
    op.execute(_TRIGGERS)


def downgrade() -> None:
    """Back to revision 0001: balances written by the application again."""
    for trigger, table in (
        ("accounts_balance_from_entries", "accounts"),
        ("accounts_open_empty", "accounts"),
        ("entries_apply_to_balances", "entries"),
        ("transfers_join_the_right_accounts", "transfers"),
    ):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
    for function in (
        "ledger_guard_balance",
        "ledger_apply_entry",
        "ledger_check_transfer_accounts",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.execute("ALTER FUNCTION ledger_check_transfer_entries() RESET search_path")
