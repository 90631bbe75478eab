"""One database per test module: a clone of a migrated template, dropped when the module ends.

A service's test suite migrates one template database per session; every module then
gets ``CREATE DATABASE <clone> TEMPLATE <template>``, which copies the migrated files in
well under a second, instead of sharing rows with every other module. Nothing a module
writes can be seen by another, so no test depends on which modules ran before it.

PostgreSQL copies everything inside the database (tables, rows, grants on them) but not
what lives in the cluster's catalogs about the database itself (its ACL, e.g. a
``REVOKE TEMPORARY ON DATABASE``): the caller re-applies those, e.g. by running the
service's own idempotent ``migrate`` on the clone.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from services.devstack.postgres import PostgresServer

# PostgreSQL truncates identifiers at 63 bytes; the random tail must survive.
_MAX_NAME = 63


def module_database_name(prefix: str, module: ModuleType) -> str:
    """``<prefix>_<module>_<random>``: readable in pg_stat_activity, unique per run."""
    stem = re.sub(r"[^a-z0-9_]", "_", module.__name__.rsplit(".", 1)[-1].lower())
    tail = uuid.uuid4().hex[:8]
    return f"{prefix}_{stem}"[: _MAX_NAME - len(tail) - 1] + f"_{tail}"


def clone_database(pg: PostgresServer, template: str, name: str, owner: str) -> None:
    """Create ``name`` as a copy of ``template`` (nobody may be connected to the template)."""
    pg.psql(f'CREATE DATABASE "{name}" TEMPLATE "{template}" OWNER "{owner}"')


def drop_database(pg: PostgresServer, name: str) -> None:
    """Drop ``name``, ending any session still connected to it."""
    pg.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def module_database(
    pg: PostgresServer, template: str, module: ModuleType, *, prefix: str, owner: str
) -> Iterator[str]:
    """A fresh clone of ``template`` for ``module``; yields its name and drops it after."""
    name = module_database_name(prefix, module)
    clone_database(pg, template, name, owner)
    try:
        yield name
    finally:
        drop_database(pg, name)


def tls_backends(pg: PostgresServer, database: str, service: str) -> tuple[int, int]:
    """(``service``'s connections to ``database``, how many of them use TLS), per pg_stat_ssl."""
    row = pg.psql(
        "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a "
        "JOIN pg_stat_ssl s USING (pid) "
        f"WHERE a.datname = '{database}' AND a.application_name LIKE 'strata-{service}%'"
    ).strip()
    total, encrypted = row.split("|")
    return int(total), int(encrypted)
