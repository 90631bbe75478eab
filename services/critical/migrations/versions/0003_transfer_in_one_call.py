"""A customer transfer in one statement: ``ledger_transfer()``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

``POST /v1/transfers`` made about twelve round trips (BEGIN, the idempotency claim, a
savepoint, the locked read, the transfer, two entries, the audit row, the recorded answer,
the release, COMMIT). This function does the common outcomes in one call, made in
autocommit so that the call is the whole transaction:

* a fresh key: claim it, lock both accounts in id order, check them, write the transfer,
  its two entries and the audit row, and store the 201 answer under the key;
* a key already used with the same request: the stored answer (``replay``), after a no-op
  write so the COMMIT waits for synchronous standbys like the original's did;
* a key used with another request: ``reuse`` (nothing is written).

Any refusal of the ledger rules (unknown or non-customer account, currency, status, funds,
range) is ``declined``: the block's subtransaction rolls back the claim, nothing is kept,
and the service runs its general path (``idempotency.once``), which decides again under
its own locks and stores the refusal it answers with. So the problem+json texts stay in
one place (Python), and this function only ever stores a 201.

It is SECURITY INVOKER: it runs with the caller's grants and every write fires the
revision 0002 triggers, so it can do nothing the runtime role could not do statement by
statement. The claim comes first, like ``idempotency.claim``, so both paths take the key
before the account locks (no lock-order cycle between them).
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SIGNATURE = "ledger_transfer(text, text, text, uuid, uuid, bigint, text, text, text)"

# The API renders datetimes with pydantic: UTC as "Z", microseconds only when non-zero.
# The stored answer must equal GET /v1/transfers/{id} (the ORM reads in UTC, db.py).
_API_TIME = """
CREATE FUNCTION ledger_api_time(at timestamptz) RETURNS text
LANGUAGE sql STABLE SET search_path = {path} AS $$
    SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN extract(microseconds FROM at)::bigint % 1000000 = 0 THEN ''
                ELSE to_char(at AT TIME ZONE 'UTC', '.US') END
        || 'Z'
$$;
"""

# now() is the transaction's start: the very value the transfers row gets as its default.
_FUNCTION = """
CREATE FUNCTION ledger_transfer(
    p_subject text, p_key text, p_request_hash text,
    p_from uuid, p_to uuid, p_amount bigint, p_currency text, p_reference text,
    p_request_id text,
    OUT outcome text, OUT status_code integer, OUT response jsonb)
LANGUAGE plpgsql SET search_path = {path} AS $$
DECLARE
    t_id uuid := gen_random_uuid();
    locked accounts%ROWTYPE;
    src accounts%ROWTYPE;
    dst accounts%ROWTYPE;
    stored_hash text;
BEGIN
    -- The answer is known before anything is written: one write of the key row.
    response := jsonb_build_object(
        'id', t_id, 'from_account', p_from, 'to_account', p_to, 'amount', p_amount,
        'currency', p_currency, 'reference', p_reference,
        'created_at', ledger_api_time(now()));
    status_code := 201;
    BEGIN
        -- A concurrent duplicate waits here until the first commits or rolls back.
        INSERT INTO idempotency_keys (subject, key, request_hash, status_code, response)
        VALUES (p_subject, p_key, p_request_hash, 201, response)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            SELECT k.request_hash, k.status_code, k.response
              INTO stored_hash, status_code, response
              FROM idempotency_keys k WHERE k.subject = p_subject AND k.key = p_key;
            IF stored_hash IS DISTINCT FROM p_request_hash THEN
                outcome := 'reuse'; status_code := NULL; response := NULL;
                RETURN;
            END IF;
            UPDATE idempotency_keys k SET status_code = k.status_code
             WHERE k.subject = p_subject AND k.key = p_key;
            outcome := 'replay';
            RETURN;
        END IF;

        IF p_from = p_to THEN
            RAISE EXCEPTION 'same account' USING ERRCODE = 'SL001';
        END IF;
        -- Ascending id order, as ledger.py locks: no deadlock between two transfers.
        -- Only customer accounts are even locked (an external account is a hot row).
        FOR locked IN SELECT * FROM accounts
                       WHERE id IN (p_from, p_to) AND kind = 'customer'
                       ORDER BY id FOR UPDATE LOOP
            IF locked.id = p_from THEN src := locked; ELSE dst := locked; END IF;
        END LOOP;
        IF src.id IS NULL OR dst.id IS NULL THEN
            RAISE EXCEPTION 'account not found' USING ERRCODE = 'SL001';
        END IF;
        IF src.currency <> p_currency OR dst.currency <> p_currency THEN
            RAISE EXCEPTION 'currency mismatch' USING ERRCODE = 'SL001';
        END IF;
        IF src.status <> 'active' OR dst.status <> 'active' THEN
            RAISE EXCEPTION 'account not active' USING ERRCODE = 'SL001';
        END IF;
        IF src.balance < p_amount THEN
            RAISE EXCEPTION 'insufficient funds' USING ERRCODE = 'SL001';
        END IF;
        IF dst.balance::numeric + p_amount > 9223372036854775807 THEN
            RAISE EXCEPTION 'amount out of range' USING ERRCODE = 'SL001';
        END IF;

        INSERT INTO transfers (id, from_account, to_account, amount, currency, reference, kind)
        VALUES (t_id, p_from, p_to, p_amount, p_currency, p_reference, 'transfer');
        -- Each entry applies itself to its balance (trigger of revision 0002), which also
        -- checks balance_after against the balance it finds under our lock.
        INSERT INTO entries (account_id, transfer_id, amount, balance_after)
        VALUES (p_from, t_id, -p_amount, src.balance - p_amount),
               (p_to, t_id, p_amount, dst.balance + p_amount);
        INSERT INTO audit_log (actor, action, resource, request_id, details)
        VALUES (p_subject, 'transfer.create', 'transfers/' || t_id, p_request_id,
                jsonb_build_object('from_account', p_from, 'to_account', p_to,
                                   'amount', p_amount, 'currency', p_currency));
        outcome := 'created';
    EXCEPTION WHEN SQLSTATE 'SL001' THEN
        -- A refusal: the claim above is rolled back with this block.
        outcome := 'declined'; status_code := NULL; response := jsonb_build_object(
            'reason', SQLERRM);
    END;
END $$;
REVOKE ALL ON FUNCTION {signature} FROM PUBLIC;
"""


def upgrade() -> None:
    """Create ``ledger_transfer``; ``migrate`` grants the runtime role EXECUTE on it."""
    schema = op.get_bind().execute(text("SELECT quote_ident(current_schema())")).scalar_one()
    path = f"{schema}, pg_temp"
    op.execute(_API_TIME.replace("{path}", path))
    op.execute(_FUNCTION.replace("{path}", path).replace("{signature}", SIGNATURE))


def downgrade() -> None:
    """Back to revision 0002: every transfer through the general path."""
    op.execute(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
    op.execute("DROP FUNCTION IF EXISTS ledger_api_time(timestamptz)")
