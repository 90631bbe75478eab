"""RS256/ES256 in the ledger under gunicorn (gthread), keys from a real JWKS HTTP server.

A request thread may wait for the key set at most the JWKS timeout; the other threads,
the probes included, keep answering meanwhile.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from services.common.auth import mint_token
from services.common.settings import DEV_JWT_SECRET
from services.critical.settings import CriticalSettings
from tests.integration.critical.conftest import service_env
from tests.support.jwks import JwksServer, SigningKey, forged_hs256, jwks_server, unsigned
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration

RSA = SigningKey.generate("RS256", "ledger-rsa")
EC = SigningKey.generate("ES256", "ledger-ec")


@pytest.fixture
def start(
    critical_settings_migrated: CriticalSettings, tmp_path: Path
) -> Iterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []

    def run(**env: str) -> ServiceProcess:
        full = {**service_env(critical_settings_migrated), "STRATA_CRITICAL_THREADS": "4", **env}
        service = ServiceProcess("critical", full, tmp_path, workers=1)
        started.append(service)
        return service.start()

    yield run
    for service in started:
        service.stop()


def accounts(service: ServiceProcess, token: str) -> httpx.Response:
    return httpx.get(
        f"{service.base_url}/v1/accounts?limit=1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def test_jwks_tokens_and_the_attacks(start: Callable[..., ServiceProcess]) -> None:
    with jwks_server([RSA, EC]) as idp:
        ledger = start(
            STRATA_CRITICAL_JWT_ALGORITHMS="RS256,ES256",
            STRATA_CRITICAL_JWT_JWKS_URL=idp.url,
            STRATA_CRITICAL_JWT_JWKS_MIN_REFRESH_SECONDS="1",
        )
        for key in (RSA, EC):
            assert accounts(ledger, key.token("critical", "accounts:read")).status_code == 200
        assert accounts(ledger, RSA.token("critical", "transfers:write")).status_code == 403
        dev = mint_token(key=DEV_JWT_SECRET, audience="strata-critical", scopes=["ledger:admin"])
        for attack in (
            dev,  # the development secret means nothing to an RS256 service
            forged_hs256(RSA.public_pem.encode(), "strata-critical"),
            unsigned("strata-critical", kid=RSA.kid),
            SigningKey.generate("RS256", RSA.kid).token("critical", "ledger:admin"),
        ):
            answer = accounts(ledger, attack)
            assert answer.status_code == 401, answer.text
            assert answer.headers["content-type"].startswith("application/problem+json")


def test_a_hanging_jwks_holds_only_the_threads_that_need_it(
    start: Callable[..., ServiceProcess],
) -> None:
    with jwks_server([RSA]) as idp:
        ledger = start(
            STRATA_CRITICAL_JWT_ALGORITHMS="RS256",
            STRATA_CRITICAL_JWT_JWKS_URL=idp.url,
            STRATA_CRITICAL_JWT_JWKS_TIMEOUT_SECONDS="10",
            STRATA_CRITICAL_JWT_JWKS_MIN_REFRESH_SECONDS="1",
        )
        known = RSA.token("critical", "accounts:read")
        assert accounts(ledger, known).status_code == 200
        # Let the JWKS rate-limit window (1 s) since the start-up fetch pass: only then
        # may an unknown kid start a fetch. (Time must pass here; nothing to wait for.)
        time.sleep(1.2)
        idp.mode = "hang"
        fetched = idp.requests
        unknown = RSA.token("critical", "accounts:read", kid="ledger-next")
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            waiting = [pool.submit(accounts, ledger, unknown) for _ in range(2)]
            assert idp.wait_requests(fetched + 1), "an unknown kid did not trigger a refetch"
            # Two of the four request threads wait for the key set; the others serve the
            # probe and a token whose key is known, before the waiting ones answer.
            assert httpx.get(f"{ledger.base_url}/livez", timeout=10).status_code == 200
            assert accounts(ledger, known).status_code == 200
            assert not any(f.done() for f in waiting), "the fetch held more than its threads"
            answers = [f.result(30) for f in waiting]
        for answer in answers:
            assert answer.status_code == 401
            assert "does not know" in answer.json()["detail"]
        assert idp.requests == fetched + 1, "one fetch for both requests"
        idp.release.set()


def test_a_jwks_that_never_answered_is_401_then_recovers(
    start: Callable[..., ServiceProcess],
) -> None:
    server = JwksServer({"keys": [RSA.jwk()]})
    server.mode = "hang"
    server.start()
    try:
        ledger = start(
            STRATA_CRITICAL_JWT_ALGORITHMS="RS256",
            STRATA_CRITICAL_JWT_JWKS_URL=server.url,
            STRATA_CRITICAL_JWT_JWKS_TIMEOUT_SECONDS="1",
            STRATA_CRITICAL_JWT_JWKS_MIN_REFRESH_SECONDS="1",
        )
        token = RSA.token("critical", "accounts:read")
        answer = accounts(ledger, token)
        assert answer.status_code == 401
        assert "could not be fetched" in answer.json()["detail"]
        server.mode = "ok"
        server.release.set()
        deadline = time.monotonic() + 15
        while accounts(ledger, token).status_code != 200:
            assert time.monotonic() < deadline, "never recovered once the JWKS answered"
            time.sleep(0.1)
    finally:
        server.stop()


def test_a_static_rs256_public_key_file(
    start: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    pem = tmp_path / "idp-public.pem"
    pem.write_text(RSA.public_pem)
    ledger = start(
        STRATA_CRITICAL_JWT_ALGORITHMS="RS256", STRATA_CRITICAL_JWT_PUBLIC_KEY_FILE=str(pem)
    )
    assert accounts(ledger, RSA.token("critical", "accounts:read", kid="")).status_code == 200
    assert accounts(ledger, EC.token("critical", "accounts:read")).status_code == 401
