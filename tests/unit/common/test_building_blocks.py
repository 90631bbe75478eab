"""Settings, problems, cursors, CORS, JSON bodies, worker counts, log lines."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsConfigDict

from services.common import problems
from services.common.cors import cors_headers
from services.common.cursor import decode_cursor, encode_cursor, parse_limit
from services.common.jsonbody import parse_json
from services.common.logs import JsonFormatter
from services.common.problems import Problem
from services.common.requestid import choose_request_id, current_request_id
from services.common.settings import DEV_JWT_SECRET, ServiceSettings
from services.common.workers import cpu_limit


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="STRATA_DEMO_", frozen=True, extra="ignore")


def test_production_refuses_missing_or_placeholder_secrets(monkeypatch) -> None:
    with pytest.raises(ValidationError, match="jwt_secret"):
        DemoSettings()
    for bad in ("changeme", DEV_JWT_SECRET, "short"):
        monkeypatch.setenv("STRATA_DEMO_JWT_SECRET", bad)
        with pytest.raises(ValidationError):
            DemoSettings()
    monkeypatch.setenv("STRATA_DEMO_JWT_SECRET", "a" * 40)
    assert DemoSettings().jwt_key == "a" * 40


def test_development_uses_the_dev_secret_and_rs256_needs_a_key(monkeypatch) -> None:
    assert DemoSettings(environment="development").jwt_key == DEV_JWT_SECRET
    with pytest.raises(ValidationError, match="jwt_public_key"):
        DemoSettings(environment="development", jwt_algorithms=["RS256"])


def test_secrets_can_come_from_files(monkeypatch, tmp_path: Path) -> None:
    secret = tmp_path / "jwt"
    secret.write_text("s" * 40 + "\n")
    monkeypatch.setenv("STRATA_DEMO_JWT_SECRET_FILE", str(secret))
    assert DemoSettings().jwt_key == "s" * 40


def test_cors_origins_parse_from_a_comma_list(monkeypatch) -> None:
    monkeypatch.setenv("STRATA_DEMO_CORS_ALLOWED_ORIGINS", "https://a.example, https://b.example")
    settings = DemoSettings(environment="development")
    assert settings.cors_allowed_origins == ["https://a.example", "https://b.example"]


def test_problem_body_and_validation_errors_hide_input() -> None:
    class Body(BaseModel):
        amount: int

    with pytest.raises(ValidationError) as info:
        Body.model_validate({"amount": "secret-value"})
    problem = problems.from_validation_error(info.value, ("body",))
    body = problem.to_dict()
    assert body["type"] == "urn:strata:problem:validation-failed"
    assert body["status"] == 422
    assert body["errors"][0]["loc"] == ["body", "amount"]
    assert "secret-value" not in json.dumps(body)
    assert problems.store_unavailable("database").headers["Retry-After"] == "1"


def test_cursor_roundtrip_and_rejections() -> None:
    cursor = encode_cursor({"i": 42, "c": "2026-01-01T00:00:00+00:00"})
    assert decode_cursor(cursor, ("i",))["i"] == 42
    for bad in ("", "!!!", encode_cursor({"x": 1}), "bm90IGpzb24"):
        with pytest.raises(Problem) as info:
            decode_cursor(bad, ("i",))
        assert info.value.slug == "invalid-cursor"


def test_limit_bounds() -> None:
    assert parse_limit(None) == 100
    assert parse_limit("1000") == 1000
    for bad in ("0", "1001", "-1", "x", "1.5"):
        with pytest.raises(Problem):
            parse_limit(bad)


def test_cors_is_off_unless_configured_and_never_echoes_strangers() -> None:
    assert cors_headers("https://a.example", [], preflight=False) == {}
    assert cors_headers("https://evil.example", ["https://a.example"], preflight=True) == {}
    allowed = cors_headers("https://a.example", ["https://a.example"], preflight=True)
    assert allowed["Access-Control-Allow-Origin"] == "https://a.example"
    assert "Access-Control-Allow-Credentials" not in allowed
    assert cors_headers("https://x", ["*"], preflight=False)["Access-Control-Allow-Origin"] == "*"


def test_json_bodies() -> None:
    assert parse_json(b'{"a": 1}', "application/json; charset=utf-8") == {"a": 1}
    assert parse_json(b"[1]", "application/merge-patch+json") == [1]
    for body, ctype, status in (
        (b"{", "application/json", 400),
        (b"", None, 400),
        (b"{}", "text/plain", 415),
    ):
        with pytest.raises(Problem) as info:
            parse_json(body, ctype)
        assert info.value.status == status


def test_request_ids_are_echoed_only_when_sane() -> None:
    assert choose_request_id("abc-123") == "abc-123"
    for bad in ("", "x" * 200, "has space", "new\nline"):
        assert choose_request_id(bad) != bad


def test_cpu_limit_from_cgroup_files(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cpu_limit(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpu_limit(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("200000")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cpu_limit(v1) == 2.0


def test_log_lines_are_json_with_the_request_id() -> None:
    token = current_request_id.set("req-1")
    try:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "request", None, None)
        record.route = "/v1/accounts"
        line = json.loads(JsonFormatter("critical").format(record))
    finally:
        current_request_id.reset(token)
    assert line["request_id"] == "req-1"
    assert line["route"] == "/v1/accounts"
    assert line["service"] == "critical"
