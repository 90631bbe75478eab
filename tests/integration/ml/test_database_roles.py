"""Least privilege: the service runs as a runtime role that reads and writes rows, nothing more.

``migrate`` runs as the owner (not a superuser here, as with an external database) and
creates or updates the runtime role. These tests connect as the runtime role itself (what
a bug or a compromised ml pod could do) and try DDL and the DML it must not have.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Awaitable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from services.devstack.postgres import PostgresServer
from tests.integration.ml.conftest import (
    OWNER,
    OWNER_PASSWORD,
    PASSWORD,
    ROLE,
    create_database,
    ml_env,
)
from tests.support.process import ROOT, ServiceProcess

pytestmark = pytest.mark.integration
PRIVILEGE = "42501"  # insufficient_privilege (also "must be owner of table")


async def _as(
    env: dict[str, str], statements: list[tuple[str, tuple[Any, ...]]], user: str, password: str
) -> str | None:
    """Run the statements in one transaction as ``user``; the SQLSTATE that stopped them."""
    conn = await asyncpg.connect(
        host=env["STRATA_ML_DATABASE_HOST"],
        port=int(env["STRATA_ML_DATABASE_PORT"]),
        user=user,
        password=password,
        database=env["STRATA_ML_DATABASE_NAME"],
    )
    try:
        async with conn.transaction():
            for sql, args in statements:
                await conn.execute(sql, *args)
    except asyncpg.PostgresError as error:
        return str(error.sqlstate)
    finally:
        await conn.close()
    return None


def as_runtime(env: dict[str, str], *statements: str | tuple[str, tuple[Any, ...]]) -> str | None:
    """As the service's runtime role: None when every statement succeeded."""
    steps = [(s, ()) if isinstance(s, str) else s for s in statements]
    return asyncio.run(_as(env, steps, ROLE, PASSWORD))


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "ddl",
    [
        "CREATE TABLE sneaky (x int)",
        "CREATE TEMP TABLE sneaky (x int)",
        "CREATE SCHEMA sneaky",
        "CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE INDEX sneaky ON ml_documents (version)",
        "DROP TABLE ml_documents",
        "DROP INDEX ix_ml_documents_data",
        "ALTER TABLE ml_documents ADD COLUMN sneaky int",
        "ALTER TABLE ml_collections DROP CONSTRAINT uq_ml_collections_name",
        "TRUNCATE ml_documents",
        "TRUNCATE ml_collections CASCADE",
        "CREATE TRIGGER sneaky BEFORE INSERT ON ml_documents "
        "FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
    ],
)
def test_runtime_role_has_no_ddl(ml_db: dict[str, str], ddl: str) -> None:
    assert as_runtime(ml_db, ddl) == PRIVILEGE


@pytest.mark.parametrize(
    "dml",
    [
        "UPDATE ml_collections SET name = 'renamed'",
        "UPDATE ml_documents SET collection_id = collection_id",
        "UPDATE ml_documents SET created_at = now()",
        "UPDATE ml_documents SET id = id",
        "INSERT INTO ml_collections (id, name) OVERRIDING SYSTEM VALUE VALUES (999999, 'x')",
        "INSERT INTO ml_collections (name, created_at) VALUES ('x', now())",
        "INSERT INTO ml_documents (collection_id, id, data, version) VALUES (1, 'x', '{}', 7)",
        "SELECT nextval('ml_collections_id_seq')",
        "SELECT id FROM ml_collections FOR SHARE",
    ],
)
def test_runtime_role_has_only_the_dml_the_service_uses(ml_db: dict[str, str], dml: str) -> None:
    assert as_runtime(ml_db, dml) == PRIVILEGE


def test_runtime_role_reads_and_writes_rows(ml_db: dict[str, str]) -> None:
    name = f"r-{uuid.uuid4().hex[:12]}"
    find = "(SELECT id FROM ml_collections WHERE name = $1)"
    assert (
        as_runtime(
            ml_db,
            ("INSERT INTO ml_collections (name) VALUES ($1)", (name,)),
            (
                f"INSERT INTO ml_documents (collection_id, id, data) VALUES ({find}, 'd', '{{}}')",
                (name,),
            ),
            (
                "UPDATE ml_documents SET data = '{\"a\": 1}', version = version + 1, "
                f"updated_at = clock_timestamp() WHERE collection_id = {find}",
                (name,),
            ),
            (f"SELECT data FROM ml_documents WHERE collection_id = {find} FOR UPDATE", (name,)),
            (f"DELETE FROM ml_documents WHERE collection_id = {find}", (name,)),
            ("DELETE FROM ml_collections WHERE name = $1", (name,)),
        )
        is None
    )


def test_runtime_role_is_plain_and_owns_nothing(
    postgres_server: PostgresServer, ml_database: str
) -> None:
    attributes = postgres_server.psql(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolcanlogin "
        f"FROM pg_roles WHERE rolname = '{ROLE}'"
    ).strip()
    assert attributes == "f|f|f|f|f|t"
    owned = postgres_server.psql(
        f"SELECT count(*) FROM pg_class WHERE relowner = '{ROLE}'::regrole", ml_database
    )
    assert owned.strip() == "0"
    table_owner = postgres_server.psql(
        "SELECT DISTINCT tableowner FROM pg_tables WHERE tablename LIKE 'ml_%'", ml_database
    )
    assert table_owner.strip() == OWNER


def test_the_service_connects_as_the_runtime_role(
    postgres_server: PostgresServer,
    ml_database: str,
    ml_service: ServiceProcess,
    client: Any,
    collection: str,
) -> None:
    assert client.get(f"/v1/collections/{collection}").status_code == 200
    users = postgres_server.psql(
        "SELECT DISTINCT usename FROM pg_stat_activity WHERE application_name = 'strata-ml' "
        f"AND datname = '{ml_database}'"
    )
    assert users.split() == [ROLE]


def migrate(env: dict[str, str], **overrides: str) -> subprocess.CompletedProcess[str]:
    """``python -m services.ml migrate`` with ``env`` (plus overrides), as the image runs it."""
    return subprocess.run(
        [sys.executable, "-m", "services.ml", "migrate"],
        cwd=ROOT,
        env={**env, **overrides, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_migrate_refuses_the_owner_as_runtime_role(ml_db: dict[str, str]) -> None:
    result = migrate(ml_db, STRATA_ML_DATABASE_USER=OWNER)
    assert result.returncode != 0
    assert "runtime and migration roles must differ" in result.stderr


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("CREATE ROLE {r} LOGIN SUPERUSER", "super"),
        ("CREATE ROLE {r} LOGIN CREATEDB", "createdb"),
        (f"CREATE ROLE {{r}} LOGIN IN ROLE {OWNER}", "owns (or is a member of the owner of)"),
    ],
)
def test_migrate_refuses_a_powerful_runtime_role(
    postgres_server: PostgresServer, ml_db: dict[str, str], setup: str, reason: str
) -> None:
    role = f"ml_it_{uuid.uuid4().hex[:8]}"
    postgres_server.psql(setup.format(r=role))
    try:
        result = migrate(ml_db, STRATA_ML_DATABASE_USER=role)
        assert result.returncode != 0
        assert "ml migrate refused" in result.stderr
        assert reason in result.stderr
    finally:
        postgres_server.psql(f"DROP ROLE {role}")


def test_migrate_takes_back_wider_grants(
    postgres_server: PostgresServer, ml_database: str, ml_db: dict[str, str]
) -> None:
    postgres_server.psql(f"GRANT ALL ON ml_documents, ml_collections TO {ROLE}", ml_database)
    assert as_runtime(ml_db, "SELECT 1 FROM ml_documents LIMIT 0") is None
    result = migrate(ml_db)
    assert result.returncode == 0, result.stderr
    assert as_runtime(ml_db, "TRUNCATE ml_documents") == PRIVILEGE
    grants = postgres_server.psql(
        "SELECT table_name || ':' || privilege_type FROM information_schema.role_table_grants "
        f"WHERE grantee = '{ROLE}' ORDER BY 1",
        ml_database,
    )
    assert grants.split() == [
        "ml_collections:DELETE",
        "ml_collections:SELECT",
        "ml_documents:DELETE",
        "ml_documents:SELECT",
    ]
    columns = postgres_server.psql(
        "SELECT table_name || '.' || column_name || ':' || privilege_type "
        "FROM information_schema.column_privileges WHERE grantee = "
        f"'{ROLE}' AND privilege_type IN ('INSERT', 'UPDATE') ORDER BY 1",
        ml_database,
    )
    assert columns.split() == [
        "ml_collections.name:INSERT",
        "ml_documents.collection_id:INSERT",
        "ml_documents.data:INSERT",
        "ml_documents.data:UPDATE",
        "ml_documents.id:INSERT",
        "ml_documents.updated_at:UPDATE",
        "ml_documents.version:UPDATE",
    ]


def test_migrate_creates_the_role_and_rotates_its_password(
    postgres_server: PostgresServer,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    database, role = f"strata_ml_it_roles_{suffix}", f"ml_it_rt_{suffix}"
    create_database(postgres_server, database)
    env = ml_env(postgres_server, database, STRATA_ML_DATABASE_USER=role)

    def login(password: str) -> str | None:
        try:
            return run(_as(env, [("SELECT 1", ())], role, password))
        except asyncpg.InvalidPasswordError:
            return "invalid password"

    try:
        first = migrate(env, STRATA_ML_DATABASE_PASSWORD="first-Pw'with\\quote")
        assert first.returncode == 0, first.stderr
        assert f"runtime role {role} granted" in first.stdout
        assert login("first-Pw'with\\quote") is None
        # Runs at once (pods starting together) queue on the lock; the password turns over.
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "services.ml", "migrate"],
                cwd=ROOT,
                env={**env, "STRATA_ML_DATABASE_PASSWORD": "second-pw", "PATH": "/usr/bin:/bin"},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(3)
        ]
        for proc in runs:
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0, out.decode()
        assert login("second-pw") is None
        assert login("first-Pw'with\\quote") == "invalid password"
        # the clear-text password never reached the server: only a SCRAM verifier
        stored = postgres_server.psql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{role}'")
        assert stored.startswith("SCRAM-SHA-256$4096:")
    finally:
        postgres_server.psql(f"DROP DATABASE IF EXISTS {database}")
        postgres_server.psql(f"DROP ROLE IF EXISTS {role}")


def test_owner_password_file_is_read(ml_db: dict[str, str], tmp_path: Any) -> None:
    secret = tmp_path / "owner-password"
    secret.write_text(OWNER_PASSWORD + "\n")
    env = {k: v for k, v in ml_db.items() if k != "STRATA_ML_MIGRATION_PASSWORD"}
    result = migrate(env, STRATA_ML_MIGRATION_PASSWORD_FILE=str(secret))
    assert result.returncode == 0, result.stderr
