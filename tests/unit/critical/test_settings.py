"""Settings of the critical service that guard against slow clients and forged headers."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from gunicorn.config import Config
from pydantic import ValidationError

from services.critical.settings import CriticalSettings


def test_defaults_trust_no_proxy_and_bound_every_request() -> None:
    settings = CriticalSettings(environment="development")
    assert settings.forwarded_allow_ips == ""
    assert settings.request_read_timeout == 10.0
    assert settings.worker_connections == 4096
    assert settings.request_buffer_bytes >= settings.max_body_bytes + 65536


def test_proxies_are_addresses_or_networks() -> None:
    settings = CriticalSettings(
        environment="development", forwarded_allow_ips=" 10.0.0.0/8, 127.0.0.1 ,::1"
    )
    assert settings.forwarded_allow_ips == "10.0.0.0/8,127.0.0.1,::1"


@pytest.mark.parametrize("value", ["*", "ingress", "10.0.0.1/8", "10.0.0.0/8,*"])
def test_a_wildcard_or_a_name_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="forwarded_allow_ips"):
        CriticalSettings(environment="development", forwarded_allow_ips=value)


def test_the_buffer_budget_must_hold_one_whole_request() -> None:
    with pytest.raises(ValidationError, match="request_buffer_bytes"):
        CriticalSettings(
            environment="development", max_body_bytes=4_194_304, request_buffer_bytes=4_194_304
        )


GUNICORN_CONF = Path(__file__).resolve().parents[3] / "services" / "critical" / "gunicorn_conf.py"


@pytest.mark.parametrize(("graceful", "drain", "timeout"), [("20", "0", 20), ("7", "2.5", 10)])
def test_gunicorn_gives_requests_in_flight_the_graceful_seconds_after_the_drain(
    monkeypatch: pytest.MonkeyPatch, graceful: str, drain: str, timeout: int
) -> None:
    # gunicorn counts graceful_timeout from SIGTERM and the worker drains first, so the
    # conf adds the drain (rounded up): requests then get graceful_seconds, as in Sanic.
    monkeypatch.setenv("STRATA_CRITICAL_ENVIRONMENT", "development")
    monkeypatch.setenv("STRATA_CRITICAL_GRACEFUL_SECONDS", graceful)
    monkeypatch.setenv("STRATA_CRITICAL_DRAIN_SECONDS", drain)
    conf = runpy.run_path(str(GUNICORN_CONF))
    config = Config()
    config.set("graceful_timeout", conf["graceful_timeout"])  # gunicorn's own validation
    assert config.graceful_timeout == timeout


def test_the_earlier_graceful_timeout_name_still_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATA_CRITICAL_GRACEFUL_TIMEOUT", "33")
    assert CriticalSettings(environment="development").graceful_seconds == 33
    monkeypatch.setenv("STRATA_CRITICAL_GRACEFUL_SECONDS", "12")  # the current name wins
    assert CriticalSettings(environment="development").graceful_seconds == 12
