"""RS256/ES256 against a real cache server and a real JWKS HTTP server (tests/support/jwks.py).

The server fetches the key set itself, over HTTP, in its Sanic workers: rotation by
``kid``, a withdrawn key, a JWKS endpoint that hangs or is gone, and the attacks (``alg:
none``, HS256 signed with the public key, a foreign key under a known ``kid``).
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.devstack.redis import RedisServer
from tests.integration.cache.conftest import cache_env, slug
from tests.support.authmatrix import FOREIGN_KEY, LABELS, matrix_failures
from tests.support.jwks import JwksServer, SigningKey, forged_hs256, jwks_server, unsigned
from tests.support.process import ServiceProcess

pytestmark = pytest.mark.integration

RSA = SigningKey.generate("RS256", "rsa-2025-01")
EC = SigningKey.generate("ES256", "ec-2025-01")
NEXT = SigningKey.generate("RS256", "rsa-2025-02")


def jwks_env(server: JwksServer, algorithms: str = "RS256,ES256", **extra: str) -> dict[str, str]:
    return {
        "STRATA_CACHE_JWT_ALGORITHMS": algorithms,
        "STRATA_CACHE_JWT_JWKS_URL": server.url,
        "STRATA_CACHE_JWT_JWKS_MIN_REFRESH_SECONDS": "1",
        "STRATA_CACHE_JWT_JWKS_TIMEOUT_SECONDS": "1",
        **extra,
    }


@pytest.fixture
def start(redis_server: RedisServer, tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []

    def run(env: dict[str, str], workers: int = 1) -> ServiceProcess:
        service = ServiceProcess("cache", cache_env(redis_server, **env), tmp_path, workers)
        started.append(service)
        return service.start()

    yield run
    for service in started:
        service.stop()


def get(service: ServiceProcess, token: str | None, key: str = "jwks-probe") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{service.base_url}/v1/kv/{key}", headers=headers, timeout=30)


def until(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll ``predicate`` until true or the deadline (what a client retrying would see)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_rs256_and_es256_from_a_jwks_with_two_workers(
    start: Callable[..., ServiceProcess],
) -> None:
    with jwks_server([RSA, EC]) as idp:
        cache = start(jwks_env(idp), workers=2)
        assert idp.wait_requests(2), "each worker fetches the key set when it starts"
        for key in (RSA, EC):
            for _ in range(4):  # new connections: both workers answer
                assert get(cache, key.token("cache", "cache:read")).status_code == 404
            wrong_scope = get(cache, key.token("cache", "cache:write"))
            assert (wrong_scope.status_code, slug(wrong_scope)) == (403, "insufficient-scope")
        forged = SigningKey.generate("RS256", RSA.kid)  # a foreign key under a trusted kid
        response = get(cache, forged.token("cache", "cache:read"))
        assert (response.status_code, slug(response)) == (401, "unauthorized")
        for attack in (
            forged_hs256(RSA.public_pem.encode(), "strata-cache"),
            unsigned("strata-cache", kid=RSA.kid),
            EC.token("cache", "cache:read", kid=RSA.kid),  # ES256 signature, RSA key's kid
        ):
            response = get(cache, attack)
            assert response.status_code == 401, attack
            assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.fixture(scope="module")
def rs256_cache(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """One RS256 server for the matrix, its keys from a JWKS publishing :data:`RSA`."""
    with jwks_server([RSA]) as idp:
        env = cache_env(redis_server, **jwks_env(idp, "RS256"))
        service = ServiceProcess("cache", env, tmp_path_factory.mktemp("jwks")).start()
        yield service
        service.stop()


@pytest.mark.parametrize("label", LABELS)
def test_auth_matrix_with_jwks_tokens(rs256_cache: ServiceProcess, label: str) -> None:
    """The whole matrix, with RS256 tokens from the identity provider's key."""
    foreign = SigningKey.generate("RS256", RSA.kid)

    def signer(scopes: Any, **kw: Any) -> str:
        key = foreign if kw.pop("key", None) == FOREIGN_KEY else RSA
        audience = kw.pop("audience").removeprefix("strata-")
        return key.token(audience, *scopes, **kw)

    assert matrix_failures(rs256_cache.base_url, "cache", label, signer) == []


def test_rotation_new_kid_and_withdrawn_kid(start: Callable[..., ServiceProcess]) -> None:
    with jwks_server([RSA]) as idp:
        cache = start(jwks_env(idp, "RS256"))
        old_token = RSA.token("cache", "cache:read", ttl=3600)
        assert get(cache, old_token).status_code == 404  # now cached by the server
        # The identity provider publishes its next key and starts signing with it.
        idp.publish([RSA, NEXT])
        new_token = NEXT.token("cache", "cache:read")
        assert until(lambda: get(cache, new_token).status_code == 404), "new kid never accepted"
        # Then it withdraws the old key: a token verified (and cached) earlier must stop
        # working once the service has seen the new set, long before its exp.
        idp.publish([NEXT])
        fetched = idp.requests
        unknown = SigningKey.generate("RS256", "trigger").token("cache", "cache:read")
        assert until(lambda: get(cache, unknown).status_code == 401 and idp.requests > fetched), (
            "no refetch on an unknown kid"
        )
        assert until(lambda: get(cache, old_token).status_code == 401), "withdrawn key still works"
        assert get(cache, new_token).status_code == 404


def test_unknown_kids_are_rate_limited_towards_the_idp(
    start: Callable[..., ServiceProcess],
) -> None:
    with jwks_server([RSA]) as idp:
        cache = start(jwks_env(idp, "RS256", STRATA_CACHE_JWT_JWKS_MIN_REFRESH_SECONDS="30"))
        assert get(cache, RSA.token("cache", "cache:read")).status_code == 404
        before = idp.requests
        with httpx.Client(base_url=cache.base_url, timeout=10) as client:
            for i in range(300):
                token = RSA.token("cache", "cache:read", kid=f"random-{i}")
                answer = client.get("/v1/kv/x", headers={"Authorization": f"Bearer {token}"})
                assert answer.status_code == 401
        assert idp.requests - before <= 1, f"{idp.requests - before} fetches for 300 random kids"


def test_a_hanging_jwks_delays_nothing_but_the_tokens_it_must_verify(
    start: Callable[..., ServiceProcess],
) -> None:
    with jwks_server([RSA]) as idp:
        cache = start(jwks_env(idp, "RS256", STRATA_CACHE_JWT_JWKS_TIMEOUT_SECONDS="10"))
        known = RSA.token("cache", "cache:read")
        assert get(cache, known).status_code == 404
        # Let the JWKS rate-limit window (1 s) since the start-up fetch pass: only then
        # may an unknown kid start a fetch. (Time must pass here; nothing to wait for.)
        time.sleep(1.2)
        # The identity provider hangs; tokens with a new kid make the worker refetch.
        idp.mode = "hang"
        fetched = idp.requests
        unknown = NEXT.token("cache", "cache:read")
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            waiting = [pool.submit(get, cache, unknown) for _ in range(2)]
            assert idp.wait_requests(fetched + 1), "an unknown kid did not trigger a refetch"
            # While they wait for the key set, the event loop serves everything else: the
            # probe and a token whose key is known answer before the waiting ones do.
            assert httpx.get(f"{cache.base_url}/livez", timeout=10).status_code == 200
            assert get(cache, known).status_code == 404
            assert get(cache, RSA.token("cache", "cache:write")).status_code == 403
            assert not any(f.done() for f in waiting), "the loop was blocked by the fetch"
            answers = [f.result(30) for f in waiting]
        for answer in answers:
            assert answer.status_code == 401
            assert "does not know" in answer.json()["detail"]
        assert idp.requests == fetched + 1, "one fetch for both requests"
        # The identity provider recovers, with the new key: it is picked up.
        idp.publish([RSA, NEXT])
        idp.mode = "ok"
        idp.release.set()
        assert until(lambda: get(cache, unknown).status_code == 404), "never recovered"
        # The endpoint disappears: the last good key set keeps serving known keys, and an
        # unknown kid is refused as soon as the connection is (refused).
        idp.stop()
        assert get(cache, RSA.token("cache", "cache:read")).status_code == 404
        assert get(cache, NEXT.token("cache", "cache:read")).status_code == 404
        other = SigningKey.generate("RS256", "never-published").token("cache", "cache:read")
        assert until(lambda: get(cache, other).status_code == 401)


def test_a_jwks_that_never_answered_is_401_saying_so(
    start: Callable[..., ServiceProcess],
) -> None:
    server = JwksServer({"keys": [RSA.jwk()]})
    server.mode = "error"
    server.start()
    try:
        cache = start(jwks_env(server, "RS256"))
        answer = get(cache, RSA.token("cache", "cache:read"))
        assert answer.status_code == 401
        assert "could not be fetched" in answer.json()["detail"]
        server.mode = "ok"
        assert until(lambda: get(cache, RSA.token("cache", "cache:read")).status_code == 404)
    finally:
        server.stop()


def test_a_static_es256_public_key_from_a_file(
    start: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    pem = tmp_path / "public.pem"
    pem.write_text(EC.public_pem)
    cache = start(
        {"STRATA_CACHE_JWT_ALGORITHMS": "ES256", "STRATA_CACHE_JWT_PUBLIC_KEY_FILE": str(pem)}
    )
    assert get(cache, EC.token("cache", "cache:read", kid="")).status_code == 404
    assert get(cache, RSA.token("cache", "cache:read")).status_code == 401
    assert get(cache, forged_hs256(EC.public_pem.encode(), "strata-cache")).status_code == 401


def test_rs256_without_a_key_refuses_to_start(redis_server: RedisServer, tmp_path: Path) -> None:
    service = ServiceProcess(
        "cache", cache_env(redis_server, STRATA_CACHE_JWT_ALGORITHMS="RS256"), tmp_path
    )
    with pytest.raises(RuntimeError, match="needs jwt_public_key"):
        service.start(timeout=30)
    service.stop()
