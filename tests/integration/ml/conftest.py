"""The ml service as a real Sanic server (2 workers) on the session's real PostgreSQL.

The ml suite owns two roles and one database in the shared server, as the chart makes
them: ``strata_ml_it_owner`` owns the database and runs ``migrate``, which creates the
runtime role ``strata_ml_it`` the service connects as. Tests that stop PostgreSQL start
their own server. Tests use unique collection names, so they share one service process.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from services.devstack.postgres import PostgresServer
from services.ml.settings import MlSettings
from services.ml.store.schema import migrate
from tests.support.http import ClientFactory, client_factory
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration

ROLE = "strata_ml_it"
PASSWORD = "ml-integration-pw"
OWNER = "strata_ml_it_owner"
OWNER_PASSWORD = "ml-integration-owner-pw"
DATABASE = "strata_ml_it"
ALL_SCOPES = ("docs:read", "docs:write", "collections:admin")
TokenFactory = Callable[..., str]


def create_database(server: PostgresServer, name: str = DATABASE, owner: str = OWNER) -> None:
    """An owner role (not a superuser; it may create roles) and an empty database it owns."""
    if not server.psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{owner}'").strip():
        server.psql(f"CREATE ROLE {owner} LOGIN CREATEROLE PASSWORD '{OWNER_PASSWORD}'")
    server.psql(f"CREATE DATABASE {name} OWNER {owner}")


def ml_env(server: PostgresServer, database: str = DATABASE, **extra: str) -> dict[str, str]:
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
def ml_db(postgres_server: PostgresServer) -> dict[str, str]:
    """The migrated ml database (as the owner); returns the service environment for it."""
    create_database(postgres_server)
    env = ml_env(postgres_server)
    asyncio.run(migrate(settings_for(env)))
    return env


@pytest.fixture(scope="session")
def ml_service(
    ml_db: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """One 2-worker server shared by the read/write tests."""
    tmp: Path = tmp_path_factory.mktemp("ml")
    service = ServiceProcess("ml", ml_db, tmp, workers=2).start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def token(make_token: TokenFactory) -> str:
    """A token with every ml scope."""
    return make_token("ml", *ALL_SCOPES)


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


async def copy_documents(env: dict[str, str], name: str, rows: int, pad: int = 400) -> None:
    """Load ``rows`` documents into collection ``name`` with COPY (ids d0000000, ...)."""
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(
        host=env["STRATA_ML_DATABASE_HOST"],
        port=int(env["STRATA_ML_DATABASE_PORT"]),
        user=env["STRATA_ML_DATABASE_USER"],
        password=env["STRATA_ML_DATABASE_PASSWORD"],
        database=env["STRATA_ML_DATABASE_NAME"],
    )
    try:
        cid = await conn.fetchval("SELECT id FROM ml_collections WHERE name = $1", name)
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


@pytest.fixture(scope="session")
def big_collection(ml_service: ServiceProcess, ml_db: dict[str, str], token: str) -> str:
    """200,000 documents of ~450 bytes (~110 MB of NDJSON), loaded with COPY."""
    with httpx.Client(
        base_url=ml_service.base_url, headers={"Authorization": f"Bearer {token}"}
    ) as c:
        assert c.put(f"/v1/collections/{BIG_NAME}").status_code == 201
    asyncio.run(copy_documents(ml_db, BIG_NAME, BIG_ROWS))
    return BIG_NAME


def open_transactions(server: PostgresServer, marker: str = "to_json(id)") -> int:
    """Backends of the service that are inside a transaction running ``marker`` SQL."""
    out = server.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'strata-ml' "
        f"AND datname = '{DATABASE}' AND xact_start IS NOT NULL "
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


@pytest.fixture(scope="session")
def large_collection(postgres_server: PostgresServer, client_session: httpx.Client) -> str:
    """120 documents of ~0.9 MB each (~108 MB), generated inside PostgreSQL."""
    assert client_session.put(f"/v1/collections/{LARGE_NAME}").status_code == 201
    postgres_server.psql(
        "INSERT INTO ml_documents (collection_id, id, data) SELECT c.id, "
        "'L' || lpad(g::text, 4, '0'), jsonb_build_object('i', g, 'blob', "
        f"repeat(md5(g::text), {LARGE_CHARS // 32})) "
        f"FROM ml_collections c, generate_series(0, {LARGE_ROWS - 1}) g "
        f"WHERE c.name = '{LARGE_NAME}'",
        DATABASE,
    )
    return LARGE_NAME


@pytest.fixture(scope="session")
def client_session(ml_service: ServiceProcess, token: str) -> Iterator[httpx.Client]:
    """A client of the shared server for session fixtures."""
    with httpx.Client(
        base_url=ml_service.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as c:
        yield c
