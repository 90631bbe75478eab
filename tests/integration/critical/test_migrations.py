"""Migrations 0002 and 0003 upgrade a live database in place; 0002 refuses an unexplained one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from services.critical.migrate import TRANSFER_FUNCTION, alembic_config, migrate
from services.critical.models import Base
from services.critical.settings import CriticalSettings
from services.devstack.postgres import PostgresServer
from tests.integration.critical.conftest import create_database, critical_settings

# What `migrate` granted the runtime role before revision 0002.
OLD_GRANTS = (
    "GRANT SELECT, INSERT, UPDATE ON accounts TO {role}",
    "GRANT SELECT, INSERT ON transfers, entries, audit_log TO {role}",
    "GRANT SELECT, INSERT, UPDATE ON idempotency_keys TO {role}",
)


@pytest.fixture
def at_0001(
    postgres_server: PostgresServer, critical_settings_migrated: CriticalSettings
) -> Iterator[tuple[CriticalSettings, Engine]]:
    """A fresh database at revision 0001 with the runtime role granted as 0001 did.

    The runtime role is the server's, made by the session's first migration.
    """
    database = f"upgrade_{uuid.uuid4().hex[:8]}"
    create_database(postgres_server, database)
    settings = critical_settings(postgres_server, database)
    owner = create_engine(settings.url(migration=True))
    with owner.connect() as conn:
        command.upgrade(alembic_config(conn), "0001")
        conn.commit()
        for grant in OLD_GRANTS:
            conn.execute(text(grant.format(role=settings.database_user)))
        conn.commit()
    yield settings, owner
    owner.dispose()


def _seed_0001(owner: Engine, *, unexplained: bool = False) -> dict[str, Any]:
    """Write a small ledger the way revision 0001's application did (balances by UPDATE)."""
    a, b, ext = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    deposit, transfer = uuid.uuid4(), uuid.uuid4()
    with owner.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO accounts (id, owner, currency, kind) VALUES "
                "(:a, 'alice', 'EUR', 'customer'), (:b, 'bob', 'EUR', 'customer'), "
                "(:x, 'strata:external', 'EUR', 'external')"
            ),
            {"a": a, "b": b, "x": ext},
        )
        for tid, src, dst, amount, kind in (
            (deposit, ext, a, 100, "deposit"),
            (transfer, a, b, 30, "transfer"),
        ):
            conn.execute(
                text(
                    "INSERT INTO transfers (id, from_account, to_account, amount, currency, kind) "
                    "VALUES (:t, :s, :d, :n, 'EUR', :k)"
                ),
                {"t": tid, "s": src, "d": dst, "n": amount, "k": kind},
            )
            for account, delta in ((src, -amount), (dst, amount)):
                after = conn.execute(
                    text(
                        "UPDATE accounts SET balance = balance + :n, version = version + 1 "
                        "WHERE id = :i RETURNING balance"
                    ),
                    {"n": delta, "i": account},
                ).scalar_one()
                conn.execute(
                    text(
                        "INSERT INTO entries (account_id, transfer_id, amount, balance_after) "
                        "VALUES (:i, :t, :n, :after)"
                    ),
                    {"i": account, "t": tid, "n": delta, "after": after},
                )
        if unexplained:
            conn.execute(text("UPDATE accounts SET balance = balance + 1 WHERE id = :b"), {"b": b})
    return {"a": a, "b": b, "external": ext}


def _balances(owner: Engine) -> dict[uuid.UUID, int]:
    with owner.connect() as conn:
        return dict(conn.execute(text("SELECT id, balance FROM accounts")).all())  # type: ignore[arg-type]


def test_upgrade_in_place_keeps_the_ledger_and_closes_the_holes(at_0001) -> None:
    settings, owner = at_0001
    ids = _seed_0001(owner)
    before = _balances(owner)
    role = settings.database_user
    with owner.connect() as conn:
        assert conn.execute(
            text("SELECT has_column_privilege(:r, 'accounts', 'balance', 'UPDATE')"), {"r": role}
        ).scalar_one()

    migrate(settings)

    assert _balances(owner) == before
    assert (before[ids["a"]], before[ids["b"]], before[ids["external"]]) == (70, 30, -100)
    with owner.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0003"
        assert not conn.execute(
            text("SELECT has_column_privilege(:r, 'accounts', 'balance', 'UPDATE')"), {"r": role}
        ).scalar_one()
    runtime = create_engine(settings.url())
    try:
        with runtime.connect() as conn, pytest.raises(DBAPIError) as info:
            conn.execute(
                text("UPDATE accounts SET balance = 1000000 WHERE id = :a"), {"a": ids["a"]}
            )
        assert info.value.orig.pgcode == "42501"  # type: ignore[union-attr]
        # The old hole, at the database level: a transfer out of the external account.
        with runtime.connect() as conn, pytest.raises(DBAPIError) as info:
            conn.execute(
                text(
                    "INSERT INTO transfers (id, from_account, to_account, amount, currency) "
                    "VALUES (:t, :x, :a, 1000000, 'EUR')"
                ),
                {"t": uuid.uuid4(), "x": ids["external"], "a": ids["a"]},
            )
        assert info.value.orig.pgcode == "23514"  # type: ignore[union-attr]
    finally:
        runtime.dispose()
    assert _balances(owner) == before


def test_upgrade_refuses_a_ledger_whose_balances_are_unexplained(at_0001) -> None:
    settings, owner = at_0001
    ids = _seed_0001(owner, unexplained=True)
    with pytest.raises(RuntimeError, match=str(ids["b"])):
        migrate(settings)
    with owner.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001"


def test_models_match_the_migrated_schema(critical_settings_migrated: CriticalSettings) -> None:
    engine = create_engine(critical_settings_migrated.url(migration=True))
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_0003_downgrades_and_upgrades_with_the_runtime_grant(at_0001) -> None:
    settings, owner = at_0001
    migrate(settings)
    exists = "SELECT count(*) FROM pg_proc WHERE proname IN ('ledger_transfer', 'ledger_api_time')"
    with owner.connect() as conn:
        assert conn.execute(text(exists)).scalar_one() == 2
        command.downgrade(alembic_config(conn), "0002")
        conn.commit()
        assert conn.execute(text(exists)).scalar_one() == 0
    migrate(settings)  # back to head, and the runtime role's EXECUTE restated
    with owner.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0003"
        assert conn.execute(
            text("SELECT has_function_privilege(:r, :f, 'EXECUTE')"),
            {"r": settings.database_user, "f": TRANSFER_FUNCTION},
        ).scalar_one()
