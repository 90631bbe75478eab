"""The runtime role ``migrate`` creates or updates: rows only, no DDL, owns nothing.

The service connects as this role; the tables belong to the owner role ``migrate`` runs
as. What the service does decides every grant:

- ``ml_collections``: read, create (``name`` only: the id is an identity and the time a
  default), delete (its documents go by ``ON DELETE CASCADE``, run as the table owner).
  No UPDATE: nothing renames a collection, and a bulk ingest does not lock the row (a
  collection deleted meanwhile makes the COPY fail its foreign key: 404).
- ``ml_documents``: read and delete; insert ``collection_id, id, data`` (single creates
  and the bulk COPY, which needs INSERT on its columns only); update ``data, version,
  updated_at`` (replace, merge patch and its ``SELECT ... FOR UPDATE``).
- no sequence: inserting into an identity column needs no privilege on its sequence.
- the schema: USAGE only; CREATE is revoked from PUBLIC and the role, and TEMPORARY on
  the database from PUBLIC, so the role cannot create tables of any kind.

Every run revokes and regrants in the migration's transaction, so a wider grant from an
older version cannot survive. Identifiers are quoted here; the password travels as a
SCRAM-SHA-256 verifier computed here, so its clear text never reaches the server (nor its
statement log, e.g. with ``log_statement = ddl``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import asyncpg  # type: ignore[import-untyped]

from services.ml.settings import MlDatabaseSettings

TABLES = ("ml_collections", "ml_documents")
_GRANTS = (
    "REVOKE ALL ON ml_collections, ml_documents FROM {role}",
    "GRANT SELECT, DELETE ON ml_collections TO {role}",
    "GRANT INSERT (name) ON ml_collections TO {role}",
    "GRANT SELECT, DELETE ON ml_documents TO {role}",
    "GRANT INSERT (collection_id, id, data) ON ml_documents TO {role}",
    "GRANT UPDATE (data, version, updated_at) ON ml_documents TO {role}",
    "GRANT USAGE ON SCHEMA public TO {role}",
    "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
    "REVOKE CREATE ON SCHEMA public FROM {role}",
    "REVOKE TEMPORARY ON DATABASE {db} FROM PUBLIC",
    "REVOKE ALL ON DATABASE {db} FROM {role}",
    "GRANT CONNECT ON DATABASE {db} TO {role}",
)
_ATTRIBUTES = ("rolsuper", "rolcreaterole", "rolcreatedb", "rolreplication", "rolbypassrls")
_SCRAM_ITERATIONS = 4096  # PostgreSQL's default (scram_iterations)


class RoleError(RuntimeError):
    """The runtime role cannot be made least-privileged as configured."""


def quote_ident(name: str) -> str:
    """A SQL identifier, quoted (any text is safe inside double quotes, doubled)."""
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def scram_verifier(password: str, salt: bytes | None = None) -> str:
    """The ``SCRAM-SHA-256$...`` verifier PostgreSQL stores for ``password`` (RFC 7677)."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _SCRAM_ITERATIONS)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${_SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _password_clause(password: str) -> str:
    # SASLprep leaves printable ASCII unchanged, so the verifier made here is the one the
    # server would make. Anything else goes as it is and the server applies SASLprep.
    printable_ascii = all(" " <= ch <= "~" for ch in password)
    return " PASSWORD " + _literal(scram_verifier(password) if printable_ascii else password)


async def _check_existing(pg: asyncpg.Connection, role: str) -> bool:
    """Whether ``role`` exists; refuse one with any power beyond logging in."""
    found = await pg.fetchrow(
        f"SELECT {', '.join(_ATTRIBUTES)} FROM pg_roles WHERE rolname = $1",  # noqa: S608
        role,
    )
    if found is None:
        return False
    powers = [name.removeprefix("rol") for name in _ATTRIBUTES if found[name]]
    if powers:
        raise RoleError(f"runtime role {role!r} has {', '.join(powers)}: it must be a plain role")
    owned = await pg.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relname = ANY($2::text[]) "
        "AND pg_has_role($1, c.relowner, 'MEMBER')",
        role,
        list(TABLES),
    )
    if owned:
        tables = ", ".join(sorted(r["relname"] for r in owned))
        raise RoleError(
            f"runtime role {role!r} owns (or is a member of the owner of) {tables}; "
            "it must own nothing: REASSIGN OWNED BY it to the migration role"
        )
    return True


async def ensure_runtime_role(pg: asyncpg.Connection, settings: MlDatabaseSettings) -> None:
    """Create the runtime role or update its password, then grant exactly what it needs.

    Call inside the migration's transaction (on its connection, under its lock).
    """
    role = settings.database_user
    if role == settings.migration_user:
        raise RoleError("runtime and migration roles must differ")
    password = settings.database_password.get_secret_value() if settings.database_password else ""
    secret = _password_clause(password) if password else ""
    quoted = quote_ident(role)
    if await _check_existing(pg, role):
        await pg.execute(f"ALTER ROLE {quoted} LOGIN{secret}")
    else:
        try:
            async with pg.transaction():  # a savepoint: another database's migrate may win
                await pg.execute(
                    f"CREATE ROLE {quoted} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE{secret}"
                )
        except asyncpg.DuplicateObjectError:
            await pg.execute(f"ALTER ROLE {quoted} LOGIN{secret}")
    for grant in _GRANTS:
        await pg.execute(grant.format(role=quoted, db=quote_ident(settings.database_name)))
