"""The ml service as a real Sanic server (2 workers) on the session's real PostgreSQL.

The ml suite owns one role and one database in the shared server (``strata_ml_it``);
tests that stop PostgreSQL start their own server. Tests use unique collection names, so
they share one service process.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from services.devstack.postgres import PostgresServer
from services.ml.settings import MlSettings
from services.ml.store.schema import migrate
from tests.support.http import ClientFactory, client_factory
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration

ROLE = "strata_ml_it"
PASSWORD = "ml-integration-pw"
DATABASE = "strata_ml_it"
ALL_SCOPES = ("docs:read", "docs:write", "collections:admin")
TokenFactory = Callable[..., str]


def create_database(server: PostgresServer, name: str = DATABASE, role: str = ROLE) -> None:
    """The service's own role owning its own database (as in development)."""
    server.psql(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
    server.psql(f"CREATE DATABASE {name} OWNER {role}")


def ml_env(server: PostgresServer, database: str = DATABASE, **extra: str) -> dict[str, str]:
    """Service variables pointing at ``server``."""
    return {
        "STRATA_ML_DATABASE_HOST": "127.0.0.1",
        "STRATA_ML_DATABASE_PORT": str(server.port),
        "STRATA_ML_DATABASE_NAME": database,
        "STRATA_ML_DATABASE_USER": ROLE,
        "STRATA_ML_DATABASE_PASSWORD": PASSWORD,
        "STRATA_ML_LOG_LEVEL": "WARNING",
        **extra,
    }


def settings_for(env: dict[str, str]) -> MlSettings:
    """Settings built from ``env`` (as the service would read them)."""
    values = {k.removeprefix("STRATA_ML_").lower(): v for k, v in env.items()}
    return MlSettings(environment="development", **values)


@pytest.fixture(scope="session")
def ml_db(postgres_server: PostgresServer) -> dict[str, str]:
    """The migrated ml database; returns the service environment for it."""
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
