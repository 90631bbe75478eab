"""Settings of the critical service that guard against slow clients and forged headers."""

from __future__ import annotations

import pytest
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
