"""Forwarding headers: believed only from configured proxies; SCRIPT_NAME from nobody.

With ``forwarded_allow_ips="*"`` any client could send ``SCRIPT_NAME: /v1/accounts`` and
have ``/v1/accounts/metrics`` served as ``/metrics``, past an Ingress that only routes
``/v1/...`` to the service.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from services.critical.settings import CriticalSettings
from tests.integration.critical.conftest import service_env
from tests.support.process import ServiceProcess

# gunicorn refuses a request whose scheme headers disagree, when it believes them.
CONFLICTING_SCHEME = {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "off"}


@pytest.fixture(scope="module")
def behind_proxy(
    critical_settings_migrated: CriticalSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """gunicorn that trusts forwarding headers from 127.0.0.1 (where the tests connect from)."""
    env = {
        **service_env(critical_settings_migrated),
        "STRATA_CRITICAL_FORWARDED_ALLOW_IPS": "127.0.0.1",
    }
    process = ServiceProcess("critical", env, tmp_path_factory.mktemp("proxy"), workers=1)
    yield process.start()
    process.stop()


@pytest.mark.parametrize("which", ["default", "trusted-proxy"])
@pytest.mark.parametrize(
    "headers",
    [
        {"SCRIPT_NAME": "/v1/accounts"},
        {"SCRIPT_NAME": "/v1/accounts", "PATH_INFO": "/metrics"},
        {"Script-Name": "/v1/accounts"},
    ],
    ids=["script-name", "with-path-info", "hyphenated"],
)
def test_a_client_cannot_move_metrics_under_the_api(
    request: pytest.FixtureRequest, which: str, headers: dict[str, str]
) -> None:
    server: ServiceProcess = request.getfixturevalue(
        "gunicorn" if which == "default" else "behind_proxy"
    )
    assert requests.get(f"{server.base_url}/metrics", timeout=5).status_code == 200
    moved = requests.get(f"{server.base_url}/v1/accounts/metrics", headers=headers, timeout=5)
    # The account route answered (no token), not the metrics route.
    assert moved.status_code == 401
    assert moved.headers["Content-Type"] == "application/problem+json"
    assert b"http_requests_total" not in moved.content


def test_scheme_headers_from_an_unconfigured_peer_are_ignored(gunicorn: ServiceProcess) -> None:
    answer = requests.get(f"{gunicorn.base_url}/livez", headers=CONFLICTING_SCHEME, timeout=5)
    assert answer.status_code == 200


def test_scheme_headers_from_a_configured_proxy_are_believed(behind_proxy: ServiceProcess) -> None:
    # Believed, so their disagreement is refused: proof the setting reaches gunicorn.
    answer = requests.get(f"{behind_proxy.base_url}/livez", headers=CONFLICTING_SCHEME, timeout=5)
    assert answer.status_code == 400
    assert answer.headers["Content-Type"] == "application/problem+json"
    agreeing = {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on"}
    assert requests.get(f"{behind_proxy.base_url}/livez", headers=agreeing, timeout=5).ok
