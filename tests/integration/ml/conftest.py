"""The ml service as a real Sanic server (2 workers) on the session's real PostgreSQL.

The ml suite owns two roles in the shared server, as the chart makes them:
``strata_ml_it_owner`` owns the databases and runs ``migrate``, which creates the runtime
role ``strata_ml_it`` the service connects as. The schema is migrated once per session into
a template database; each test module gets its own clone of it (tests/support/databases.py)
and its own service process on that clone. A module whose tests use the 200,000-document
collection clones a second template that holds it (loaded once per session). Tests that
stop PostgreSQL start their own server. Tests inside a module use unique collection names,
so they run in any order (pytest-randomly).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from services.devstack.postgres import PostgresServer
from services.ml.settings import MlSettings
from services.ml.store.schema import migrate
from tests.support.databases import clone_database, drop_database, module_database
from tests.support.http import ClientFactory, client_factory
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration

ROLE = "strata_ml_it"
PASSWORD = "ml-integration-pw"
OWNER = "strata_ml_it_owner"
OWNER_PASSWORD = "ml-integration-owner-pw"
TEMPLATE = "strata_ml_it_template"
BIG_TEMPLATE = "strata_ml_it_big_template"
ALL_SCOPES = ("docs:read", "docs:write", "collections:admin")
TokenFactory = Callable[..., str]


def create_database(server: PostgresServer, name: str, owner: str = OWNER) -> None:
    """An owner role (not a superuser; it may create roles) and an empty database it owns."""
    if not server.psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{owner}'").strip():
        server.psql(f"CREATE ROLE {owner} LOGIN CREATEROLE PASSWORD '{OWNER_PASSWORD}'")
    server.psql(f"CREATE DATABASE {name} OWNER {owner}")


def ml_env(server: PostgresServer, database: str, **extra: str) -> dict[str, str]:
    """Service variables pointing at ``server``."""
    return {
        "STRATA_ML_DATABASE_HOST": "127.0.0.1",
        "STRATA_ML_DATABASE_PORT": str(server.port),
        "STRATA_ML_DATABASE_NAME": database,
        "STRATA_ML_DATABASE_USER": ROLE,
        "STRATA_ML_DATABASE_PASSWORD": PASSWORD,
        "STRATA_ML_MIGRATION_USER": OWNER,
        "STRATA_ML_MIGRATION_PASSWORD": OWNER_PASSWORD,
        "STRATA_ML_LOG_LEVEL": "WARNING",
        **extra,
    }


def settings_for(env: dict[str, str]) -> MlSettings:
    """Settings built from ``env`` (as the service would read them)."""
    values = {k.removeprefix("STRATA_ML_").lower(): v for k, v in env.items()}
    return MlSettings(environment="development", **values)


@pytest.fixture(scope="session")
def ml_template(postgres_server: PostgresServer) -> Iterator[str]:
    """The schema migrated once per session: the template of every module's database.

    Named per session, so that sessions sharing one server (``make mutation``) never meet.
    """
    name = f"{TEMPLATE}_{uuid.uuid4().hex[:8]}"
    create_database(postgres_server, name)
    asyncio.run(migrate(settings_for(ml_env(postgres_server, name))))
    yield name
    drop_database(postgres_server, name)


@pytest.fixture(scope="session")
def ml_big_template(postgres_server: PostgresServer, ml_template: str) -> Iterator[str]:
    """The template plus :data:`BIG_NAME`'s 200,000 documents, loaded once with COPY."""
    name = f"{BIG_TEMPLATE}_{uuid.uuid4().hex[:8]}"
    clone_database(postgres_server, ml_template, name, OWNER)
    asyncio.run(copy_documents(ml_env(postgres_server, name), BIG_NAME, BIG_ROWS))
    yield name
    drop_database(postgres_server, name)


def _module_uses(request: pytest.FixtureRequest, fixture: str) -> bool:
    """Whether any selected test of the requesting module uses ``fixture``."""
    return any(
        fixture in getattr(item, "fixturenames", ())
        for item in request.session.items
        if getattr(item, "module", None) is request.module
    )


@pytest.fixture(scope="module")
def ml_database(
    postgres_server: PostgresServer, ml_template: str, request: pytest.FixtureRequest
) -> Iterator[str]:
    """This module's own migrated database (a clone of a template), dropped after."""
    template = (
        request.getfixturevalue("ml_big_template")
        if _module_uses(request, "big_collection")
        else ml_template
    )
    with module_database(
        postgres_server, template, request.module, prefix="ml", owner=OWNER
    ) as database:
        # A clone has the tables, rows and their grants, but not the database's own ACL
        # (migrate revokes TEMPORARY from PUBLIC): migrate applies it as on any deployment.
        asyncio.run(migrate(settings_for(ml_env(postgres_server, database))))
        yield database


@pytest.fixture(scope="module")
def ml_db(postgres_server: PostgresServer, ml_database: str) -> dict[str, str]:
    """The service environment for this module's database."""
    return ml_env(postgres_server, ml_database)


@pytest.fixture(scope="module")
def ml_service(
    ml_db: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """This module's 2-worker server, on this module's database."""
    tmp: Path = tmp_path_factory.mktemp("ml")
    service = ServiceProcess("ml", ml_db, tmp, workers=2).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def token(make_token: TokenFactory) -> str:
    """A token with every ml scope, valid for an hour from the module's start.

    Minted per module, not per session: a session-wide token expired mid-run whenever the
    modules before took longer than its lifetime, failing whichever modules came late.
    """
    return make_token("ml", *ALL_SCOPES, ttl=3600)


@pytest.fixture
def new_client(ml_service: ServiceProcess, token: str) -> Iterator[ClientFactory]:
    """Make clients of the shared server; ``token=None`` sends no Authorization header."""
    with client_factory(ml_service.base_url, token, timeout=30) as make:
        yield make


@pytest.fixture
def client(new_client: ClientFactory) -> httpx.Client:
    """A client holding every ml scope."""
    return new_client()


@pytest.fixture
def collection(client: httpx.Client) -> str:
    """A fresh, empty collection."""
    name = f"c-{uuid.uuid4().hex[:12]}"
    assert client.put(f"/v1/collections/{name}").status_code == 201
    return name


def slug(response: httpx.Response) -> str:
    """The problem slug of an error response (and check it is problem+json)."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body = response.json()
    assert body["status"] == response.status_code
    return str(body["type"]).removeprefix("urn:strata:problem:")


BIG_ROWS = 200_000
BIG_NAME = "big-export"


async def connect(env: dict[str, str]) -> Any:
    """A raw asyncpg connection as the service's role, to the database ``env`` names."""
    import asyncpg  # type: ignore[import-untyped]

    return await asyncpg.connect(
        host=env["STRATA_ML_DATABASE_HOST"],
        port=int(env["STRATA_ML_DATABASE_PORT"]),
        user=env["STRATA_ML_DATABASE_USER"],
        password=env["STRATA_ML_DATABASE_PASSWORD"],
        database=env["STRATA_ML_DATABASE_NAME"],
    )


async def copy_documents(env: dict[str, str], name: str, rows: int, pad: int = 400) -> None:
    """Create collection ``name`` and load ``rows`` documents with COPY (ids d0000000, ...)."""
    conn = await connect(env)
    try:
        cid = await conn.fetchval(
            "INSERT INTO ml_collections (name) VALUES ($1) RETURNING id", name
        )
        filler = "x" * pad
        records = (
            (cid, f"d{i:07d}", f'{{"i": {i}, "group": {i % 10}, "pad": "{filler}"}}')
            for i in range(rows)
        )
        await conn.copy_records_to_table(
            "ml_documents", records=records, columns=["collection_id", "id", "data"]
        )
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def big_collection(postgres_server: PostgresServer, ml_database: str) -> str:
    """200,000 documents of ~450 bytes (~110 MB of NDJSON), in this module's database.

    ``ml_database`` cloned the big template because this fixture is among the module's.
    """
    found = postgres_server.psql(
        f"SELECT count(*) FROM ml_collections WHERE name = '{BIG_NAME}'", ml_database
    )
    assert found.strip() == "1", "the module's database was not cloned from the big template"
    return BIG_NAME


def open_transactions(server: PostgresServer, database: str, marker: str = "to_json(id)") -> int:
    """Backends of the service on ``database`` inside a transaction running ``marker`` SQL."""
    out = server.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'strata-ml' "
        f"AND datname = '{database}' AND xact_start IS NOT NULL "
        f"AND query LIKE '%{marker}%' AND pid <> pg_backend_pid()"
    )
    return int(out.strip())


class RssSampler(threading.Thread):
    """Track the peak RSS of every worker process while an export runs."""

    def __init__(self, service: ServiceProcess) -> None:
        super().__init__(daemon=True)
        assert service.process is not None
        main = psutil.Process(service.process.pid)
        self.workers = [p for p in main.children(recursive=True) if "python" in p.name()]
        assert len(self.workers) >= 2
        self.baseline = {p.pid: p.memory_info().rss for p in self.workers}
        self.peak = dict(self.baseline)
        self.done = threading.Event()

    def run(self) -> None:
        """Sample every 20 ms until told to stop."""
        while not self.done.wait(0.02):
            for p in self.workers:
                self.peak[p.pid] = max(self.peak[p.pid], p.memory_info().rss)

    def growth(self) -> int:
        """The largest growth of any worker, bytes."""
        return max(self.peak[pid] - self.baseline[pid] for pid in self.baseline)

    def __enter__(self) -> RssSampler:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.join()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``predicate`` every 50 ms until true; the seconds it took (fail after ``timeout``)."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)
    return time.monotonic() - started


LARGE_ROWS = 120
LARGE_NAME = "large-docs"
LARGE_CHARS = 900_000


@pytest.fixture(scope="module")
def large_collection(
    postgres_server: PostgresServer, ml_database: str, client_session: httpx.Client
) -> str:
    """120 documents of ~0.9 MB each (~108 MB), generated inside PostgreSQL."""
    assert client_session.put(f"/v1/collections/{LARGE_NAME}").status_code == 201
    postgres_server.psql(
        "INSERT INTO ml_documents (collection_id, id, data) SELECT c.id, "
        "'L' || lpad(g::text, 4, '0'), jsonb_build_object('i', g, 'blob', "
        f"repeat(md5(g::text), {LARGE_CHARS // 32})) "
        f"FROM ml_collections c, generate_series(0, {LARGE_ROWS - 1}) g "
        f"WHERE c.name = '{LARGE_NAME}'",
        ml_database,
    )
    return LARGE_NAME


@pytest.fixture(scope="module")
def client_session(ml_service: ServiceProcess, token: str) -> Iterator[httpx.Client]:
    """A client of this module's server for module fixtures."""
    with httpx.Client(
        base_url=ml_service.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as c:
        yield c
