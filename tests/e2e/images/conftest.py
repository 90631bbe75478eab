"""Fixtures of the container tests: a Docker engine, the images, a network with PostgreSQL
and Redis, and each service running the way the Helm chart runs it.

Order: engine (started if needed; skip with the reason if none can be started) -> images
(tests/e2e/images.sh) -> network + stores -> migrations as one-shot containers -> services.
Everything this run creates carries the label ``strata.e2e.run=<id>`` and is removed at the
end; a test checks that nothing is left behind.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from services.common.auth import mint_token
from tests.e2e.images.dockerlib import (
    DOCKERD_SH,
    HARDENED,
    IMAGES_SH,
    POSTGRES_IMAGE,
    REDIS_IMAGE,
    SERVICE_IMAGES,
    Container,
    Stack,
    docker,
    docker_binary,
    remove_stale,
    wait_for,
    wait_ready,
)

BUILD_REPORT: list[str] = []
SHUTDOWN_REPORT: list[str] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The first test pays for the image builds (a cold build is ~4-5 min on 2 cores).
    for item in items:
        if "tests/e2e/images" in str(item.path) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(1200))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if BUILD_REPORT:
        terminalreporter.section("container images")
        for line in BUILD_REPORT:
            terminalreporter.write_line(line)
    if SHUTDOWN_REPORT:
        terminalreporter.section("graceful shutdown")
        for line in SHUTDOWN_REPORT:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def engine() -> str:
    """A Docker engine that answers: started with tests/e2e/docker/dockerd.sh if needed."""
    if docker_binary() is None:
        pytest.skip("container tests skipped: no docker client (apt-get install -y docker.io)")
    proc = subprocess.run(
        ["bash", str(DOCKERD_SH)], capture_output=True, text=True, timeout=120, check=False
    )
    if proc.returncode == 2:
        pytest.skip(
            f"container tests skipped: no Docker engine can be started here: {proc.stderr.strip()}"
        )
    if proc.returncode != 0:
        pytest.fail(f"dockerd.sh failed ({proc.returncode}): {proc.stderr}")
    return docker("version", "--format", "{{.Server.Version}}").stdout.strip()


@pytest.fixture(scope="session")
def images(engine: str) -> dict[str, str]:
    """Build (or reuse) every image with tests/e2e/images.sh; return service -> image."""
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(IMAGES_SH)], capture_output=True, text=True, timeout=1500, check=False
    )
    if proc.returncode != 0:
        pytest.fail(f"tests/e2e/images.sh failed ({proc.returncode}):\n{proc.stderr[-6000:]}")
    BUILD_REPORT.append(f"engine {engine}; images.sh took {time.monotonic() - started:.0f}s")
    BUILD_REPORT.extend(line for line in proc.stdout.splitlines() if line.startswith("  "))
    return dict(SERVICE_IMAGES)


@pytest.fixture(scope="session")
def stack(images: dict[str, str]) -> Iterator[Stack]:
    """The user-defined network; removes every container of this run at the end."""
    remove_stale()
    stack = Stack()
    stack.create_network()
    yield stack
    left = stack.cleanup()
    assert not left, f"left behind after cleanup: {left}"


@dataclass(frozen=True)
class Pg:
    container: Container
    alias: str
    user: str
    password: str
    database: str


# How the chart runs PostgreSQL and Redis (values.yaml: uid 999, read-only root, emptyDirs).
STORE_HARDENED = (
    "--user", "999:999",
    "--read-only",
    "--tmpfs", "/tmp:rw,nosuid,nodev,size=64m",
    "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges",
)  # fmt: skip


def _start_postgres(stack: Stack, role: str, user: str, database: str) -> Pg:
    password = secrets.token_urlsafe(18)
    # As the chart runs it: the official image's environment, PGDATA below the volume's
    # mount point, the socket directory on an emptyDir, `postgres -c ...` as arguments.
    container = stack.run(
        role,
        POSTGRES_IMAGE,
        ["postgres", "-c", "max_connections=100"],
        env={
            "POSTGRES_USER": user,
            "POSTGRES_PASSWORD": password,
            "POSTGRES_DB": database,
            "PGDATA": "/var/lib/postgresql/data/pgdata",
        },
        options=(*STORE_HARDENED, "--tmpfs", "/var/run/postgresql:rw,nosuid,nodev,mode=1777"),
        alias=role,
    )
    return Pg(container, role, user, password, database)


def _wait_postgres(pg: Pg) -> None:
    def ready() -> bool:
        pg.container.assert_running()
        # TCP on 127.0.0.1: the init-time server listens on the Unix socket only.
        return (
            pg.container.exec(
                "pg_isready", "-h", "127.0.0.1", "-U", pg.user, "-d", pg.database, check=False
            ).returncode
            == 0
        )

    wait_for(f"{pg.alias} to accept connections", ready, deadline=90)


@pytest.fixture(scope="session")
def postgres(stack: Stack) -> dict[str, Pg]:
    """Two PostgreSQL containers, as the chart has two StatefulSets: critical and ml."""
    pgs = {
        "critical": _start_postgres(stack, "postgres-critical", "strata_owner", "strata_critical"),
        "ml": _start_postgres(stack, "postgres-ml", "strata_ml", "strata_ml"),
    }
    for pg in pgs.values():
        _wait_postgres(pg)
    return pgs


@dataclass(frozen=True)
class RedisInfo:
    container: Container
    alias: str
    password: str


@pytest.fixture(scope="session")
def redis(stack: Stack) -> RedisInfo:
    password = secrets.token_urlsafe(18)
    container = stack.run(
        "redis",
        REDIS_IMAGE,
        ["redis-server", "--appendonly", "yes", "--requirepass", password],
        options=STORE_HARDENED,
        alias="redis",
    )

    def ready() -> bool:
        container.assert_running()
        out = container.exec(
            "redis-cli", "--no-auth-warning", "-a", password, "ping", check=False
        ).stdout
        return out.strip() == "PONG"

    wait_for("redis to answer PING", ready, deadline=60)
    return RedisInfo(container, "redis", password)


@dataclass(frozen=True)
class ServiceSetup:
    """Everything needed to run one service's container like the chart does."""

    service: str
    image: str
    env: dict[str, str]
    jwt_secret: str

    def token(self, *scopes: str, subject: str = "e2e", ttl: int = 900) -> str:
        return mint_token(
            key=self.jwt_secret,
            audience=f"strata-{self.service}",
            scopes=scopes,
            subject=subject,
            ttl=ttl,
        )

    def auth(self, *scopes: str, subject: str = "e2e") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(*scopes, subject=subject)}"}


def _common_env(prefix: str, jwt_secret: str) -> dict[str, str]:
    return {
        f"{prefix}ENVIRONMENT": "production",
        f"{prefix}JWT_SECRET": jwt_secret,
        f"{prefix}WORKERS": "2",
        f"{prefix}LOG_LEVEL": "INFO",
    }


@pytest.fixture(scope="session")
def critical_setup(stack: Stack, postgres: dict[str, Pg], images: dict[str, str]) -> ServiceSetup:
    """The critical service's env; its migration has run as its own container."""
    pg = postgres["critical"]
    jwt_secret = secrets.token_urlsafe(36)
    app_password = secrets.token_urlsafe(18)
    env = {
        **_common_env("STRATA_CRITICAL_", jwt_secret),
        "STRATA_CRITICAL_DATABASE_HOST": pg.alias,
        "STRATA_CRITICAL_DATABASE_NAME": pg.database,
        "STRATA_CRITICAL_DATABASE_USER": "strata_app",
        "STRATA_CRITICAL_DATABASE_PASSWORD": app_password,
    }
    migrate_env = {
        **env,
        "STRATA_CRITICAL_MIGRATION_USER": pg.user,
        "STRATA_CRITICAL_MIGRATION_PASSWORD": pg.password,
    }
    code, logs = stack.run_to_completion(
        "critical-migrate", images["critical"], ["migrate"], env=migrate_env, options=HARDENED
    )
    assert code == 0, f"critical migrate exited {code}:\n{logs}"
    # The service itself never gets the owner's password.
    return ServiceSetup("critical", images["critical"], env, jwt_secret)


@pytest.fixture(scope="session")
def ml_setup(stack: Stack, postgres: dict[str, Pg], images: dict[str, str]) -> ServiceSetup:
    """The ml service's env, as the chart runs it: migrate as the owner, ml as its runtime role."""
    pg = postgres["ml"]
    jwt_secret = secrets.token_urlsafe(36)
    app_password = secrets.token_urlsafe(18)
    env = {
        **_common_env("STRATA_ML_", jwt_secret),
        "STRATA_ML_DATABASE_HOST": pg.alias,
        "STRATA_ML_DATABASE_NAME": pg.database,
        "STRATA_ML_DATABASE_USER": "strata_ml_app",
        "STRATA_ML_DATABASE_PASSWORD": app_password,
    }
    migrate_env = {
        **env,
        "STRATA_ML_MIGRATION_USER": pg.user,
        "STRATA_ML_MIGRATION_PASSWORD": pg.password,
    }
    code, logs = stack.run_to_completion(
        "ml-migrate", images["ml"], ["migrate"], env=migrate_env, options=HARDENED
    )
    assert code == 0, f"ml migrate exited {code}:\n{logs}"
    # Like critical, the service never gets the owner's password.
    return ServiceSetup("ml", images["ml"], env, jwt_secret)


@pytest.fixture(scope="session")
def cache_setup(redis: RedisInfo, images: dict[str, str]) -> ServiceSetup:
    jwt_secret = secrets.token_urlsafe(36)
    env = {
        **_common_env("STRATA_CACHE_", jwt_secret),
        "STRATA_CACHE_REDIS_URL": f"redis://{redis.alias}:6379/0",
        "STRATA_CACHE_REDIS_PASSWORD": redis.password,
    }
    return ServiceSetup("cache", images["cache"], env, jwt_secret)


StartService = Callable[..., Container]


@pytest.fixture(scope="session")
def start_service(stack: Stack) -> StartService:
    """Run a service container as the chart does and wait until ``/readyz`` is 200."""

    def start(setup: ServiceSetup, role: str, **extra_env: str) -> Container:
        container = stack.run(
            role,
            setup.image,
            ["serve"],
            env={**setup.env, **extra_env},
            options=HARDENED,
            publish=True,
            alias=role,
        )
        wait_ready(container)
        return container

    return start


@pytest.fixture(scope="session")
def critical(critical_setup: ServiceSetup, start_service: StartService) -> Container:
    return start_service(critical_setup, "critical")


@pytest.fixture(scope="session")
def ml(ml_setup: ServiceSetup, start_service: StartService) -> Container:
    return start_service(ml_setup, "ml")


@pytest.fixture(scope="session")
def cache(cache_setup: ServiceSetup, start_service: StartService) -> Container:
    return start_service(cache_setup, "cache")
