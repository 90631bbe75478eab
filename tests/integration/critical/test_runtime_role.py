"""As the runtime role, every write it is granted: no balance changes without a balanced pair.

These tests connect to PostgreSQL as the service's own role (what a bug or a compromised
service could do) and try each INSERT and UPDATE it holds, with inconsistent data. Each
attempt must fail with the SQLSTATE given, or succeed without touching a balance; and
after each, every balance still equals the sum of its account's entries.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

Statement = tuple[str, dict[str, Any]]

PRIVILEGE = "42501"
CHECK = "23514"
FOREIGN_KEY = "23503"
UNIQUE = "23505"
INTEGRITY = "23000"

TRANSFER = (
    "INSERT INTO transfers (id, from_account, to_account, amount, currency, kind) "
    "VALUES (:t, :src, :dst, :amount, :currency, :kind)"
)
ENTRY = (
    "INSERT INTO entries (account_id, transfer_id, amount, balance_after) "
    "VALUES (:account, :t, :amount, :after)"
)


@dataclass
class Ledger:
    """A small ledger made through the API: funded ``a``, empty ``b``/``c``, USD ``d``."""

    a: str
    b: str
    c: str
    d: str
    external: str

    def transfer(
        self, src: str, dst: str, amount: int, kind: str = "transfer", currency: str = "EUR"
    ) -> Statement:
        """The INSERT of a transfer row (its id is ``self.last``)."""
        self.last = str(uuid.uuid4())
        params = {"src": src, "dst": dst, "amount": amount, "currency": currency, "kind": kind}
        return TRANSFER, {"t": self.last, **params}

    def entry(
        self, account: str, amount: int, after: int, transfer: str | None = None
    ) -> Statement:
        """The INSERT of one entry (on the last transfer unless told)."""
        params = {"account": account, "amount": amount, "after": after}
        return ENTRY, {"t": transfer or self.last, **params}


def attempt(engine: Engine, statements: list[Statement]) -> str | None:
    """Run the statements in one transaction and commit: the SQLSTATE that stopped it, or None."""
    with engine.connect() as conn:
        try:
            for sql, params in statements:
                conn.execute(text(sql), params)
            conn.commit()
        except DBAPIError as exc:
            return str(getattr(exc.orig, "pgcode", None))
    return None


def balances(engine: Engine) -> dict[str, tuple[int, int]]:
    """Every account's balance and the sum of its entries."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT a.id::text, a.balance, coalesce(sum(e.amount), 0)::bigint "
                "FROM accounts a LEFT JOIN entries e ON e.account_id = a.id GROUP BY a.id"
            )
        ).all()
    return {account: (balance, total) for account, balance, total in rows}


def assert_explained(snapshot: dict[str, tuple[int, int]]) -> None:
    """Every balance equals the sum of its entries."""
    unexplained = {k: v for k, v in snapshot.items() if v[0] != v[1]}
    assert not unexplained


@pytest.fixture
def ledger(account, client, auth) -> Ledger:
    a, b, c, d = account(balance=100), account(), account(), account(currency="USD")
    deposit = client.post(f"/v1/accounts/{b['id']}/deposits", json={"amount": 1}, headers=auth())
    client.post(f"/v1/accounts/{b['id']}/withdrawals", json={"amount": 1}, headers=auth())
    return Ledger(a["id"], b["id"], c["id"], d["id"], deposit.json["from_account"])


def _new_id() -> dict[str, Any]:
    return {"i": str(uuid.uuid4())}


# Each case: (id, statements built from the ledger, expected SQLSTATE or None for "allowed").
CASES: list[tuple[str, Callable[[Ledger], list[Statement]], str | None]] = [
    # accounts: the balance is not the runtime role's to write, nor kind or currency.
    (
        "update-balance",
        lambda x: [("UPDATE accounts SET balance = balance + 1000000 WHERE id = :a", {"a": x.a})],
        PRIVILEGE,
    ),
    (
        "zero-the-external-account",
        lambda x: [("UPDATE accounts SET balance = 0 WHERE id = :e", {"e": x.external})],
        PRIVILEGE,
    ),
    (
        "turn-customer-into-external",
        lambda x: [("UPDATE accounts SET kind = 'external' WHERE id = :a", {"a": x.a})],
        PRIVILEGE,
    ),
    (
        "change-currency",
        lambda x: [("UPDATE accounts SET currency = 'USD' WHERE id = :a", {"a": x.a})],
        PRIVILEGE,
    ),
    (
        "open-with-a-balance",
        lambda x: [
            (
                "INSERT INTO accounts (id, owner, currency, balance) VALUES (:i, 'x', 'EUR', 10)",
                _new_id(),
            )
        ],
        PRIVILEGE,
    ),
    (
        "open-backdated",
        lambda x: [
            (
                "INSERT INTO accounts (id, owner, currency, created_at) "
                "VALUES (:i, 'x', 'EUR', '2000-01-01')",
                _new_id(),
            )
        ],
        PRIVILEGE,
    ),
    (
        "second-external-account",
        lambda x: [
            (
                "INSERT INTO accounts (id, owner, currency, kind) "
                "VALUES (:i, 'x', 'EUR', 'external')",
                _new_id(),
            )
        ],
        UNIQUE,
    ),
    (
        "status-and-version-only",
        lambda x: [
            (
                "UPDATE accounts SET status = 'frozen', version = version + 7, "
                "updated_at = now() WHERE id = :c",
                {"c": x.c},
            )
        ],
        None,
    ),
    # transfers: only the right kinds of accounts, in the transfer's currency.
    (
        "transfer-out-of-the-external-account",
        lambda x: [x.transfer(x.external, x.b, 1_000_000), x.entry(x.b, 1_000_000, 1_000_000)],
        CHECK,
    ),
    (
        "transfer-into-the-external-account",
        lambda x: [x.transfer(x.a, x.external, 10), x.entry(x.a, -10, 90)],
        CHECK,
    ),
    ("deposit-between-customers", lambda x: [x.transfer(x.a, x.b, 10, "deposit")], CHECK),
    ("withdrawal-from-external", lambda x: [x.transfer(x.external, x.a, 10, "withdrawal")], CHECK),
    ("deposit-into-external", lambda x: [x.transfer(x.external, x.external, 10, "deposit")], CHECK),
    ("currency-mismatch", lambda x: [x.transfer(x.a, x.d, 10, currency="EUR")], CHECK),
    ("wrong-currency-label", lambda x: [x.transfer(x.a, x.b, 10, currency="USD")], CHECK),
    (
        "transfer-backdated",
        lambda x: [
            (
                "INSERT INTO transfers (id, from_account, to_account, amount, currency, "
                "created_at) VALUES (:i, :a, :b, 1, 'EUR', '2000-01-01')",
                {**_new_id(), "a": x.a, "b": x.b},
            )
        ],
        PRIVILEGE,
    ),
    ("transfer-without-entries", lambda x: [x.transfer(x.a, x.b, 10)], INTEGRITY),
    # entries: must match their transfer, both of them, with the true running balance.
    ("entry-without-transfer", lambda x: [x.entry(x.a, -10, 90, str(uuid.uuid4()))], FOREIGN_KEY),
    (
        "debit-only",
        lambda x: [x.transfer(x.a, x.b, 10), x.entry(x.a, -10, 90)],
        INTEGRITY,
    ),
    (
        "credit-only",
        lambda x: [x.transfer(x.a, x.b, 10), x.entry(x.b, 10, 10)],
        INTEGRITY,
    ),
    (
        "unbalanced-pair",
        lambda x: [x.transfer(x.a, x.b, 10), x.entry(x.a, -10, 90), x.entry(x.b, 50, 50)],
        CHECK,
    ),
    (
        "amounts-swapped",
        lambda x: [x.transfer(x.a, x.b, 10), x.entry(x.a, 10, 110), x.entry(x.b, -10, -10)],
        CHECK,
    ),
    (
        "entry-on-a-third-account",
        lambda x: [x.transfer(x.a, x.b, 10), x.entry(x.a, -10, 90), x.entry(x.c, 10, 10)],
        CHECK,
    ),
    (
        "wrong-balance-after",
        lambda x: [x.transfer(x.a, x.b, 10), x.entry(x.a, -10, 1000), x.entry(x.b, 10, 10)],
        CHECK,
    ),
    (
        "overdraft",
        lambda x: [x.transfer(x.a, x.b, 1000), x.entry(x.a, -1000, -900), x.entry(x.b, 1000, 1000)],
        CHECK,
    ),
    (
        "entry-backdated",
        lambda x: [
            x.transfer(x.a, x.b, 10),
            (
                "INSERT INTO entries (account_id, transfer_id, amount, balance_after, created_at) "
                "VALUES (:a, :t, -10, 90, '2000-01-01')",
                {"a": x.a, "t": x.last},
            ),
        ],
        PRIVILEGE,
    ),
    # audit and idempotency rows may be written, but they move nothing.
    (
        "audit-row-claiming-a-transfer",
        lambda x: [
            (
                "INSERT INTO audit_log (actor, action, resource, details) "
                "VALUES ('mallory', 'transfer.create', 'transfers/x', '{\"amount\": 5}')",
                {},
            )
        ],
        None,
    ),
    (
        "audit-row-backdated",
        lambda x: [
            (
                "INSERT INTO audit_log (actor, action, resource, at) "
                "VALUES ('m', 'a', 'r', '2000-01-01')",
                {},
            )
        ],
        PRIVILEGE,
    ),
    (
        "idempotency-record-rewritten",
        lambda x: [
            (
                "INSERT INTO idempotency_keys (subject, key, request_hash, status_code, response) "
                "VALUES ('mallory', :i, 'h', 0, '{}')",
                _new_id(),
            ),
            (
                "UPDATE idempotency_keys SET status_code = 201, response = '{\"amount\": 9}' "
                "WHERE subject = 'mallory'",
                {},
            ),
        ],
        None,
    ),
    (
        "idempotency-subject-rewritten",
        lambda x: [("UPDATE idempotency_keys SET subject = 'someone-else'", {})],
        PRIVILEGE,
    ),
    # ways around the rules that a non-owner must not have.
    ("replica-mode", lambda x: [("SET session_replication_role = replica", {})], PRIVILEGE),
    ("disable-triggers", lambda x: [("ALTER TABLE entries DISABLE TRIGGER ALL", {})], PRIVILEGE),
    ("call-the-trigger", lambda x: [("SELECT ledger_apply_entry()", {})], PRIVILEGE),
    (
        "shadow-entries-with-a-temp-table",
        lambda x: [
            ("CREATE TEMP TABLE entries (transfer_id uuid, amount bigint)", {}),
            x.transfer(x.a, x.b, 10),
            ("INSERT INTO pg_temp.entries VALUES (:t, -10), (:t, 10)", {"t": x.last}),
        ],
        INTEGRITY,
    ),
    (
        "shadow-accounts-with-a-temp-table",
        lambda x: [
            ("CREATE TEMP TABLE accounts (id uuid, kind text, currency text)", {}),
            (
                "INSERT INTO pg_temp.accounts VALUES (:e, 'customer', 'EUR'), "
                "(:b, 'customer', 'EUR')",
                {"e": x.external, "b": x.b},
            ),
            x.transfer(x.external, x.b, 1_000_000),
        ],
        CHECK,
    ),
    (
        "update-balance-from-a-temp-trigger",
        lambda x: [
            (
                "CREATE FUNCTION pg_temp.steal() RETURNS trigger LANGUAGE plpgsql AS $$ "
                "BEGIN UPDATE public.accounts SET balance = balance + 5 "
                f"WHERE id = '{x.b}'; RETURN NEW; END $$",
                {},
            ),
            ("CREATE TEMP TABLE bait (n int)", {}),
            (
                "CREATE TRIGGER steal BEFORE INSERT ON pg_temp.bait "
                "FOR EACH ROW EXECUTE FUNCTION pg_temp.steal()",
                {},
            ),
            ("INSERT INTO pg_temp.bait VALUES (1)", {}),
        ],
        PRIVILEGE,
    ),
]


@pytest.mark.parametrize(
    ("statements", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_runtime_role_cannot_change_a_balance_without_a_balanced_pair(
    runtime_engine: Engine, owner_engine: Engine, ledger: Ledger, statements, expected
) -> None:
    before = balances(owner_engine)
    assert attempt(runtime_engine, statements(ledger)) == expected
    after = balances(owner_engine)
    assert {k: after[k] for k in before} == before
    assert_explained(after)


def test_a_matching_balanced_pair_does_move_money(
    runtime_engine: Engine, owner_engine: Engine, ledger: Ledger
) -> None:
    # The positive control: the same role, writing what the application writes, succeeds.
    statements = [ledger.transfer(ledger.a, ledger.b, 10)]
    statements += [ledger.entry(ledger.a, -10, 90), ledger.entry(ledger.b, 10, 10)]
    assert attempt(runtime_engine, statements) is None
    after = balances(owner_engine)
    assert (after[ledger.a], after[ledger.b]) == ((90, 90), (10, 10))
    assert_explained(after)
    # ...and only once: a second pair of entries for that transfer is refused.
    replay = [ledger.entry(ledger.a, -10, 80, ledger.last), ledger.entry(ledger.b, 10, 20)]
    assert attempt(runtime_engine, replay) == UNIQUE


def test_even_the_owner_changes_balances_only_through_entries(
    owner_engine: Engine, ledger: Ledger
) -> None:
    sql = "UPDATE accounts SET balance = balance + 1 WHERE id = :a"
    assert attempt(owner_engine, [(sql, {"a": ledger.a})]) == PRIVILEGE
    opened = "INSERT INTO accounts (id, owner, currency, balance) VALUES (:i, 'x', 'EUR', 3)"
    assert attempt(owner_engine, [(opened, _new_id())]) == CHECK


def test_the_runtime_role_holds_no_update_on_balances(runtime_engine: Engine) -> None:
    with runtime_engine.connect() as conn:
        allowed = conn.execute(
            text(
                "SELECT column_name FROM information_schema.column_privileges "
                "WHERE table_name = 'accounts' AND privilege_type = 'UPDATE' "
                "AND grantee = current_user ORDER BY 1"
            )
        ).scalars()
        assert list(allowed) == ["status", "updated_at", "version"]
