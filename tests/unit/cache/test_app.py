"""The factory: routes (including the ':' paths), OpenAPI, and the CLI's config check."""

from __future__ import annotations

from pathlib import Path

import pytest
from sanic.exceptions import MethodNotAllowed, NotFound

from services.cache.__main__ import main
from services.cache.app import create_app
from services.cache.settings import CacheSettings
from services.cache.spec import ENDPOINTS, INFO
from services.common.openapi import build_openapi


@pytest.mark.usefixtures("sanic_test_mode")
@pytest.mark.parametrize(
    ("method", "path", "handler"),
    [
        ("GET", "/v1/kv/a", "get_value"),
        ("PUT", "/v1/kv/a/b", "put_value"),
        ("DELETE", "/v1/kv/x:incr", "delete_value"),
        ("POST", "/v1/kv:mget", "mget"),
        ("POST", "/v1/kv:mset", "mset"),
        ("POST", "/v1/counters/a:incr", "incr_counter"),
        ("GET", "/v1/counters/a:incr", "get_counter"),
        ("GET", "/livez", "livez"),
        ("GET", "/readyz", "readyz"),
        ("GET", "/metrics", "metrics"),
        ("GET", "/openapi.json", "openapi"),
    ],
)
def test_routes(settings: CacheSettings, method: str, path: str, handler: str) -> None:
    app = create_app(settings)
    app.router.finalize()
    route, _, _ = app.router.get(path, method, None)
    assert route.name.endswith("." + handler)


@pytest.mark.usefixtures("sanic_test_mode")
def test_unknown_and_wrong_method_routes(settings: CacheSettings) -> None:
    app = create_app(settings)
    app.router.finalize()
    with pytest.raises(NotFound):
        app.router.get("/v1/kv:mgetx", "POST", None)
    with pytest.raises(MethodNotAllowed):
        app.router.get("/v1/kv:mget", "GET", None)


# The scopes each operation must demand, written out here (not read from the code that
# declares them): a read must never be enough to write.
SCOPES = {
    ("get", "/v1/kv/{key}"): ["cache:read"],
    ("put", "/v1/kv/{key}"): ["cache:write"],
    ("delete", "/v1/kv/{key}"): ["cache:write"],
    ("post", "/v1/kv:mget"): ["cache:read"],
    ("post", "/v1/kv:mset"): ["cache:write"],
    ("post", "/v1/counters/{key}:incr"): ["cache:write"],
    ("get", "/v1/counters/{key}"): ["cache:read"],
}


def _refs(node: object) -> list[str]:
    """Every ``$ref`` value anywhere in ``node``."""
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_openapi_refs_resolve(settings: CacheSettings) -> None:
    document = build_openapi(INFO, settings, (e.operation for e in ENDPOINTS))
    schemas = document["components"]["schemas"]
    for name in ("PutValue", "Entry", "MgetRequest", "MsetRequest", "IncrRequest", "Problem"):
        assert name in schemas
    refs = _refs(document)
    assert len(refs) >= 10, refs  # request bodies, responses and problems all refer
    prefix = "#/components/schemas/"
    for ref in refs:
        assert ref.startswith(prefix), ref
        assert ref.removeprefix(prefix) in schemas, ref
    protected = {}
    for name, path in document["paths"].items():
        for method, operation in path.items():
            if not name.startswith("/v1/"):
                assert operation["security"] == []  # probes, metrics, this document
                continue
            protected[method, name] = operation["security"]
            assert "401" in operation["responses"]
            assert "403" in operation["responses"]
    assert protected == {op: [{"bearer": scopes}] for op, scopes in SCOPES.items()}
    assert {"/livez", "/readyz", "/metrics", "/openapi.json"} <= set(document["paths"])


@pytest.mark.usefixtures("sanic_test_mode")
def test_sanic_graceful_timeout_is_the_setting(
    settings: CacheSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRATA_CACHE_GRACEFUL_SECONDS", "9")
    from_env = CacheSettings(environment="development", redis_url=settings.redis_url)
    assert create_app(from_env).config.GRACEFUL_SHUTDOWN_TIMEOUT == 9.0
    assert create_app(settings).config.GRACEFUL_SHUTDOWN_TIMEOUT == 20.0  # the default


def test_serve_refuses_bad_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # main() defaults the metrics directory in os.environ; keep that out of other tests.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    monkeypatch.setenv("STRATA_CACHE_ENVIRONMENT", "development")
    monkeypatch.setenv("STRATA_CACHE_REDIS_URL", "http://nope")
    assert main(["serve"]) == 2
    assert "redis_url" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["bogus"])
    assert caught.value.code == 2
