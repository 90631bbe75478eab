"""``strata run``: a throwaway PostgreSQL and Redis plus every service, on localhost.

Ctrl-C (or SIGTERM) stops the services, then the servers, and removes their data:
nothing is left running.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from services.common.auth import audience_for, mint_token
from services.common.settings import DEV_JWT_SECRET
from services.devstack.cli import ALL_SCOPES
from services.devstack.ports import free_port, wait_for_port
from services.devstack.postgres import PostgresServer
from services.devstack.redis import RedisServer

OWNER_PASSWORD = "strata-dev-owner"  # noqa: S105 - throwaway local server
APP_PASSWORD = "strata-dev-app"  # noqa: S105
ML_OWNER_PASSWORD = "strata-dev-ml-owner"  # noqa: S105
ML_PASSWORD = "strata-dev-ml"  # noqa: S105
REDIS_PASSWORD = "strata-dev-redis"  # noqa: S105


def _port(preferred: int) -> int:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


def hs256(service: str) -> bool:
    """Whether the service verifies development HS256 tokens (unless the environment says
    ``STRATA_<SVC>_JWT_ALGORITHMS=RS256``/``ES256``, e.g. to try docs/auth.md locally)."""
    return os.environ.get(f"STRATA_{service.upper()}_JWT_ALGORITHMS", "HS256").upper() == "HS256"


def service_env(
    service: str, pg: PostgresServer | None, redis: RedisServer | None, port: int, tmp: Path
) -> dict[str, str]:
    """The environment a service runs with in the local stack."""
    prefix = f"STRATA_{service.upper()}_"
    env = {
        **os.environ,
        f"{prefix}ENVIRONMENT": "development",
        f"{prefix}HOST": "127.0.0.1",
        f"{prefix}PORT": str(port),
        f"{prefix}WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / f"metrics-{service}"),
    }
    if hs256(service):  # a service set up for RS256/ES256 must get no secret (it refuses one)
        env[f"{prefix}JWT_SECRET"] = os.environ.get("STRATA_JWT_SECRET", DEV_JWT_SECRET)
    if service == "critical" and pg:
        env |= {
            f"{prefix}DATABASE_HOST": "127.0.0.1",
            f"{prefix}DATABASE_PORT": str(pg.port),
            f"{prefix}DATABASE_PASSWORD": APP_PASSWORD,
            f"{prefix}MIGRATION_PASSWORD": OWNER_PASSWORD,
        }
    if service == "ml" and pg:
        env |= {
            f"{prefix}DATABASE_HOST": "127.0.0.1",
            f"{prefix}DATABASE_PORT": str(pg.port),
            f"{prefix}DATABASE_PASSWORD": ML_PASSWORD,
            f"{prefix}MIGRATION_PASSWORD": ML_OWNER_PASSWORD,
        }
    if service == "cache" and redis:
        env |= {
            f"{prefix}REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
            f"{prefix}REDIS_PASSWORD": REDIS_PASSWORD,
        }
    return env


def prepare_databases(pg: PostgresServer) -> None:
    """Roles and databases as the chart makes them: an owner per service's database.

    Each service's ``migrate`` (as the owner) creates the runtime role it then runs as.
    """
    pg.psql(f"CREATE ROLE strata_owner LOGIN CREATEROLE PASSWORD '{OWNER_PASSWORD}'")
    pg.psql("CREATE DATABASE strata_critical OWNER strata_owner")
    pg.psql(f"CREATE ROLE strata_ml LOGIN CREATEROLE PASSWORD '{ML_OWNER_PASSWORD}'")
    pg.psql("CREATE DATABASE strata_ml OWNER strata_ml")


def _examples(urls: dict[str, str]) -> str:
    lines = []
    for service, url in urls.items():
        lines.append(f"\n{service}: {url}   (metrics {url}/metrics, spec {url}/openapi.json)")
        if hs256(service):
            token = mint_token(
                key=os.environ.get("STRATA_JWT_SECRET", DEV_JWT_SECRET),
                audience=audience_for(service),
                scopes=ALL_SCOPES[service].split(),
                ttl=12 * 3600,
            )
            lines.append(f"  export {service.upper()}_TOKEN={token}")
        else:
            lines.append(
                f"  export {service.upper()}_TOKEN=$(strata token --service {service} "
                "--private-key PRIVATE_KEY.pem)   # signed by your identity provider's key"
            )
        auth = f'-H "Authorization: Bearer ${service.upper()}_TOKEN"'
        if service == "critical":
            lines.append(
                f"  curl -s -X POST {url}/v1/accounts {auth} -H 'Content-Type: application/json' "
                """-d '{"owner": "alice", "currency": "EUR"}'"""
            )
        elif service == "ml":
            lines.append(f"  curl -s -X PUT {url}/v1/collections/runs {auth}")
            lines.append(
                f"  printf '%s\\n' '{{\"loss\": 0.3}}' '{{\"loss\": 0.2}}' | curl -s -X POST "
                f"{url}/v1/collections/runs/documents:bulk {auth} "
                "-H 'Content-Type: application/x-ndjson' --data-binary @-"
            )
            lines.append(f"  curl -s {url}/v1/collections/runs/export {auth}")
        else:
            lines.append(
                f"  curl -s -X PUT {url}/v1/kv/greeting {auth} -H 'Content-Type: application/json' "
                """-d '{"value": "hello", "ttl": 60}'"""
            )
            lines.append(f"  curl -s {url}/v1/kv/greeting {auth}")
    return "\n".join(lines)


def run_stack(services: list[str], base_port: int = 8001) -> int:
    """Start everything, print how to use it, wait for Ctrl-C, stop everything."""
    wanted = list(services)  # the CLI allows only the three services, all present
    tmp = Path(tempfile.mkdtemp(prefix="strata-run-"))
    tmp.chmod(0o755)  # as root, PostgreSQL runs as another user and must reach its directory
    cleanups: list[Callable[[], None]] = []
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        pg = redis = None
        if {"critical", "ml"} & set(wanted):
            pg = PostgresServer(base_dir=str(tmp / "postgres")).start()
            cleanups.append(pg.stop)
            prepare_databases(pg)
        if "cache" in wanted:
            redis = RedisServer(password=REDIS_PASSWORD, base_dir=str(tmp / "redis")).start()
            cleanups.append(redis.stop)
        urls: dict[str, str] = {}
        for offset, service in enumerate(wanted):
            port = _port(base_port + offset)
            env = service_env(service, pg, redis, port, tmp)
            if service in ("critical", "ml"):
                subprocess.run(
                    [sys.executable, "-m", f"services.{service}", "migrate"], env=env, check=True
                )
            proc = subprocess.Popen(
                [sys.executable, "-m", f"services.{service}", "serve"],
                env=env,
                start_new_session=True,  # our Ctrl-C handling stops it, in order
            )
            cleanups.append(functools.partial(_terminate, proc))
            _wait_serving(proc, port, service)
            urls[service] = f"http://127.0.0.1:{port}"
        print("\nStrata is running. Ctrl-C stops everything.", flush=True)
        print(_examples(urls), flush=True)
        while not stop.wait(0.5):
            pass
        print("\nstopping…", flush=True)
        return 0
    finally:
        for cleanup in reversed(cleanups):
            cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def _wait_serving(proc: subprocess.Popen[bytes], port: int, service: str) -> None:
    """Wait until the service listens; fail at once if it exits instead."""
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"{service} exited with {proc.returncode} during start-up")
        try:
            wait_for_port(port, timeout=0.1)
        except TimeoutError:
            continue
        return
    raise RuntimeError(f"{service} did not listen on {port}")


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group; SIGKILL it if it has not gone in 30 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
