"""The PostgreSQL and Redis test images keep the official images' conventions, so the Helm
chart's defaults (and the real-cluster harness) work with them unchanged."""

from __future__ import annotations

import secrets

from tests.e2e.images.conftest import Pg, RedisInfo
from tests.e2e.images.dockerlib import POSTGRES_IMAGE, Stack, wait_for


def _uid_of_pid1(container_exec: object) -> str:
    out = container_exec("sh", "-c", "grep '^Uid:' /proc/1/status").stdout  # type: ignore[operator]
    return str(out.split()[1])


def test_postgres_password_auth_data_dir_and_uid(stack: Stack, postgres: dict[str, Pg]) -> None:
    """Over the network (as the services connect) a wrong password is refused."""
    pg = postgres["ml"]

    def psql(password: str, query: str) -> tuple[int, str]:
        return stack.run_to_completion(
            f"psql-{secrets.token_hex(3)}",
            POSTGRES_IMAGE,
            ["psql", "-h", pg.alias, "-U", pg.user, "-d", pg.database, "-Atc", query],
            env={"PGPASSWORD": password},
            options=("--user", "999:999"),
            timeout=60,
        )

    code, out = psql("wrong", "select 1")
    assert code != 0
    assert "password authentication failed" in out
    code, out = psql(
        pg.password,
        "select current_setting('data_directory'), current_setting('max_connections'), "
        "current_setting('listen_addresses'), "
        "current_setting('password_encryption'), rolsuper "
        "from pg_roles where rolname = current_user",
    )
    assert code == 0, out
    assert out.strip() == "/var/lib/postgresql/data/pgdata|100|*|scram-sha-256|t"
    assert _uid_of_pid1(pg.container.exec) == "999"


def test_postgres_started_as_root_with_the_defaults(stack: Stack) -> None:
    """`docker run -e POSTGRES_PASSWORD=x image`: root start, default PGDATA, user and db."""
    password = secrets.token_urlsafe(12)
    container = stack.run("postgres-root", POSTGRES_IMAGE, env={"POSTGRES_PASSWORD": password})

    def ready() -> bool:
        container.assert_running()
        return container.exec("pg_isready", "-h", "127.0.0.1", "-U", "postgres",
                              check=False).returncode == 0  # fmt: skip

    wait_for("postgres (root start) to accept connections", ready, deadline=90)
    out = container.exec(
        "env", f"PGPASSWORD={password}", "psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc",
        "select current_setting('data_directory'), current_database()",
    ).stdout.strip()  # fmt: skip
    assert out == "/var/lib/postgresql/data|postgres"
    assert _uid_of_pid1(container.exec) == "999"  # dropped from root to postgres
    stack.remove(container)


def test_redis_requirepass_appendonly_data_and_uid(redis: RedisInfo) -> None:
    noauth = redis.container.exec("redis-cli", "set", "k", "v", check=False).stdout
    assert "NOAUTH" in noauth
    cli = ["redis-cli", "--no-auth-warning", "-a", redis.password]
    assert redis.container.exec(*cli, "config", "get", "dir").stdout.split() == ["dir", "/data"]
    assert redis.container.exec(*cli, "config", "get", "appendonly").stdout.split() == [
        "appendonly",
        "yes",
    ]
    assert redis.container.exec("ls", "/data").stdout.split() == ["appendonlydir"]
    assert _uid_of_pid1(redis.container.exec) == "999"
