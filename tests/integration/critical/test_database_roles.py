"""Integrity lives in the database: roles, constraints, triggers, concurrent migrations."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, ProgrammingError

from services.devstack.postgres import PostgresServer
from tests.integration.critical.conftest import create_database, critical_settings, service_env


def _fails(engine: Engine, sql: str, params: dict | None = None) -> str:
    with engine.connect() as conn, pytest.raises(DBAPIError) as info:
        conn.execute(text(sql), params or {})
    return str(info.value.orig.pgcode)  # type: ignore[union-attr]


def test_runtime_role_cannot_run_ddl(runtime_engine: Engine) -> None:
    assert _fails(runtime_engine, "CREATE TABLE intruder (id int)") == "42501"
    assert _fails(runtime_engine, "ALTER TABLE accounts ADD COLUMN x int") == "42501"
    assert _fails(runtime_engine, "DROP TABLE audit_log") == "42501"


def test_runtime_role_cannot_rewrite_history(runtime_engine: Engine, account) -> None:
    account(balance=5)
    for sql in (
        "UPDATE audit_log SET actor = 'someone-else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "UPDATE entries SET amount = amount * 2",
        "DELETE FROM entries",
        "DELETE FROM transfers",
        "DELETE FROM accounts",
    ):
        assert _fails(runtime_engine, sql) == "42501", sql


def test_audit_rows_record_writes(owner_engine: Engine, client, auth) -> None:
    request_id = f"audit-{uuid.uuid4().hex}"
    created = client.post(
        "/v1/accounts",
        json={"owner": "audited", "currency": "EUR"},
        headers=auth(subject="auditor", **{"X-Request-ID": request_id}),
    )
    assert created.headers["X-Request-ID"] == request_id
    with owner_engine.connect() as conn:
        row = conn.execute(
            text("SELECT actor, action, resource FROM audit_log WHERE request_id = :r"),
            {"r": request_id},
        ).one()
    assert tuple(row) == ("auditor", "account.create", f"accounts/{created.json['id']}")


def test_even_the_owner_cannot_update_audit_rows(owner_engine: Engine, account) -> None:
    # An audit row of this test's own: the refusal is a row trigger, which an UPDATE of
    # no rows never fires (this module's database starts empty; tests run in any order).
    created = account()
    resource = f"accounts/{created['id']}"
    refused = _fails(
        owner_engine, "UPDATE audit_log SET actor = 'x' WHERE resource = :r", {"r": resource}
    )
    assert refused == "42501"


def test_constraints_hold_without_the_application(owner_engine: Engine) -> None:
    new = uuid.uuid4()
    cases = {
        "INSERT INTO accounts (id, owner, currency, balance) VALUES (:i, 'x', 'EUR', -1)": "23514",
        "INSERT INTO accounts (id, owner, currency) VALUES (:i, 'x', 'eur')": "23514",
        "INSERT INTO accounts (id, owner, currency, status) "
        "VALUES (:i, 'x', 'EUR', 'gone')": "23514",
        "INSERT INTO transfers (id, from_account, to_account, amount, currency) "
        "VALUES (:i, :i, :i, 0, 'EUR')": "23514",
    }
    for sql, code in cases.items():
        assert _fails(owner_engine, sql, {"i": new}) == code, sql


def test_a_transfer_without_its_two_entries_cannot_commit(owner_engine: Engine, account) -> None:
    a, b = account(balance=10), account()
    with owner_engine.connect() as conn, pytest.raises(DBAPIError) as info:
        conn.execute(
            text(
                "INSERT INTO transfers (id, from_account, to_account, amount, currency) "
                "VALUES (:t, :a, :b, 5, 'EUR')"
            ),
            {"t": uuid.uuid4(), "a": a["id"], "b": b["id"]},
        )
        conn.commit()  # the deferred trigger fires here
    assert info.value.orig.pgcode == "23000"  # type: ignore[union-attr]


def test_concurrent_migrations_are_safe(postgres_server: PostgresServer, tmp_path) -> None:
    database = f"migrate_{uuid.uuid4().hex[:8]}"
    create_database(postgres_server, database)
    settings = critical_settings(postgres_server, database)
    env = {**__import__("os").environ, **service_env(settings)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "services.critical", "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    engine = create_engine(settings.url(migration=True))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0003"
            assert conn.execute(text("SELECT count(*) FROM accounts")).scalar() == 0
    finally:
        engine.dispose()
    # The runtime role exists with the configured password and may read, not create.
    runtime = create_engine(settings.url())
    try:
        with runtime.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM accounts")).scalar() == 0
            with pytest.raises(ProgrammingError) as refused:
                conn.execute(text("CREATE TABLE nope (id int)"))
            assert refused.value.orig.pgcode == "42501"  # type: ignore[union-attr]
    finally:
        runtime.dispose()
