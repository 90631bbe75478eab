"""The factory wires every route, and the OpenAPI document describes exactly those."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.common.openapi import build_openapi
from services.ml.api import ENDPOINTS
from services.ml.app import create_app
from services.ml.settings import MlDatabaseSettings, MlSettings
from services.ml.spec import INFO


def settings(**values: object) -> MlSettings:
    return MlSettings(environment="development", **values)  # type: ignore[arg-type]


def test_every_route_is_documented() -> None:
    app = create_app(settings())
    app.router.finalize()
    served = set()
    for route in app.router.routes:
        path = "/" + route.path
        if path == "/docs" or path.startswith("/docs/"):
            continue  # the HTML reference (docs/api.md), not part of the API it describes
        # <op:documents:bulk> -> documents:bulk, <name:str> -> {name}, <doc_id:str> -> {id}
        path = re.sub(r"<op:([^>]+)>", r"\1", path)
        path = path.replace("<name:str>", "{name}").replace("<doc_id:str>", "{id}")
        served |= {(m, path) for m in route.methods}
    # HEAD is served wherever GET is, and not described separately.
    gets = {path for method, path in served if method == "GET"}
    assert {path for method, path in served if method == "HEAD"} == gets
    paths = build_openapi(INFO, settings(), (e.operation for e in ENDPOINTS))["paths"]
    described = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert {(m, p) for m, p in served if m != "HEAD"} == described


def test_the_documented_sample_bound_is_the_setting() -> None:
    # The sample's n is declared with its maximum taken from max_sample, not a constant.
    for bound in (7, 250_000):
        document = build_openapi(INFO, settings(max_sample=bound), (e.operation for e in ENDPOINTS))
        sample = document["paths"]["/v1/collections/{name}/documents:sample"]["get"]
        (n,) = [p for p in sample["parameters"] if p["name"] == "n"]
        assert n["schema"] == {"type": "integer", "minimum": 1, "maximum": bound}


def test_body_limit_comes_from_settings() -> None:
    app = create_app(settings(max_body_bytes=4096))
    assert app.config.REQUEST_MAX_SIZE == 4096


@pytest.mark.parametrize("seconds", [3, 45])
def test_sanic_gives_requests_in_flight_the_graceful_seconds(seconds: int) -> None:
    # The one shutdown rule (docs/configuration.md): Sanic counts it after the drain.
    app = create_app(settings(graceful_seconds=seconds, drain_seconds=2))
    timeout = app.config.GRACEFUL_SHUTDOWN_TIMEOUT
    assert timeout == float(seconds)


def test_production_refuses_placeholder_secret() -> None:
    with pytest.raises(ValueError, match="jwt_secret"):
        MlSettings(environment="production")


def test_database_password_from_file(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    secret = Path(str(tmp_path)) / "pw"
    secret.write_text("s3cret-from-file\n")
    monkeypatch.setenv("STRATA_ML_DATABASE_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("STRATA_ML_POOL_SIZE", "7")
    loaded = settings()
    assert loaded.database_password is not None
    assert loaded.database_password.get_secret_value() == "s3cret-from-file"
    assert loaded.pool_size == 7
    url = loaded.database_url()
    assert url.drivername == "postgresql+asyncpg"
    assert url.password == "s3cret-from-file"
    assert "s3cret" not in repr(loaded)


def test_defaults_match_the_configuration_contract() -> None:
    s = settings()
    assert (s.host, s.port, s.database_name, s.database_user, s.migration_user) == (
        "0.0.0.0",
        8000,
        "strata_ml",
        "strata_ml_app",
        "strata_ml",
    )
    assert (s.pool_size, s.max_overflow, s.pool_timeout, s.statement_timeout_ms) == (
        5,
        0,
        2.0,
        30000,
    )
    assert (s.max_document_bytes, s.bulk_max_documents, s.bulk_max_bytes) == (
        1_048_576,
        10_000,
        33_554_432,
    )
    assert s.export_batch_size == 2000
    assert (s.export_batch_bytes, s.page_max_bytes) == (4 * 1024 * 1024, 4 * 1024 * 1024)
    assert (s.export_max_concurrent, s.export_retry_after, s.export_send_timeout) == (2, 5, 30.0)


def test_migration_password_from_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "owner"
    secret.write_text("owner-secret\n")
    monkeypatch.setenv("STRATA_ML_MIGRATION_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("STRATA_ML_MIGRATION_USER", "ml_owner")
    loaded = MlDatabaseSettings()
    owner = loaded.database_url(migration=True)
    assert (owner.username, owner.password) == ("ml_owner", "owner-secret")
    runtime = loaded.database_url()
    assert (runtime.username, runtime.password) == ("strata_ml_app", None)


def test_exports_cannot_take_the_whole_pool() -> None:
    with pytest.raises(ValueError, match="export_max_concurrent"):
        settings(pool_size=2, export_max_concurrent=2)
    assert settings(pool_size=2, max_overflow=1, export_max_concurrent=2).pool_size == 2
