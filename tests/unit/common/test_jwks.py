"""JWKS keys: caching, rotation by ``kid``, rate-limited refetch, an endpoint that is down.

The fetch is a function here (the HTTP side is in tests/integration/test_jwks_service.py,
against a real server) and time is a fake clock, so every rule is checked exactly.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from services.common.auth import TokenVerifier
from services.common.cache import CachingVerifier
from services.common.jwks import JwksKeys, parse_key_set
from services.common.problems import Problem
from tests.support.jwks import SigningKey, forged_hs256, jwks, unsigned

OLD = SigningKey.generate("RS256", "2024-old")
NEW = SigningKey.generate("RS256", "2025-new")
EC = SigningKey.generate("ES256", "ec-1")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeIdp:
    """The fetch function: serves ``keys``, counts calls, can fail or hang until released."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.calls = 0
        self.failing = False
        self.gate: threading.Event | None = None

    def __call__(self) -> bytes:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(30)
        if self.failing:
            raise ConnectionRefusedError("identity provider is down")
        return json.dumps(jwks(self.keys)).encode()


def make(
    idp: FakeIdp, clock: Clock, algorithms: tuple[str, ...] = ("RS256",), **kw: Any
) -> JwksKeys:
    kw.setdefault("timeout", 5.0)
    return JwksKeys("https://idp.example/jwks", algorithms, fetch=idp, clock=clock, **kw)


def verifier(keys: JwksKeys, algorithms: tuple[str, ...] = ("RS256",)) -> TokenVerifier:
    return TokenVerifier(
        keys=keys, algorithms=list(algorithms), audience="strata-cache", wait_for_keys=5.0
    )


def settle(keys: JwksKeys) -> None:
    """Wait for a fetch in flight to finish (its future is the synchronisation, no sleep).

    A lookup returns as soon as the new keys are installed, a moment before the fetch
    counts as finished; a test that asserts on the next fetch must wait for that moment.
    """
    future = keys._inflight
    if future is not None:
        future.result(10)


def status(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(Problem) as info:
        call()
    return info.value.status, info.value.detail


def test_first_use_fetches_and_verifies_rs256_and_es256() -> None:
    idp, clock = FakeIdp(OLD, EC), Clock()
    keys = make(idp, clock, ("RS256", "ES256"))
    v = verifier(keys, ("RS256", "ES256"))
    assert not keys.loaded
    assert v.verify(OLD.token("cache", "cache:read")).scopes == {"cache:read"}
    assert v.verify(EC.token("cache", "cache:write")).scopes == {"cache:write"}
    assert idp.calls == 1  # one fetch served both


def test_the_key_set_is_cached_for_its_ttl_then_refreshed_in_the_background() -> None:
    idp, clock = FakeIdp(OLD), Clock()
    keys = make(idp, clock, cache_seconds=300)
    v = verifier(keys)
    for _ in range(50):
        v.verify(OLD.token("cache"))
    settle(keys)
    assert idp.calls == 1
    clock.now += 301
    v.verify(OLD.token("cache"))  # served from the stale set while a refetch runs
    settle(keys)
    assert idp.calls == 2


def test_rotation_new_kid_is_fetched_on_first_sight() -> None:
    idp, clock = FakeIdp(OLD), Clock()
    keys = make(idp, clock, min_refresh_seconds=10)
    v = verifier(keys)
    v.verify(OLD.token("cache"))
    settle(keys)
    clock.now += 11
    idp.keys = [OLD, NEW]  # the identity provider publishes its next key ...
    assert v.verify(NEW.token("cache", "cache:read")).subject == "developer"  # ... and uses it
    assert idp.calls == 2
    assert v.verify(OLD.token("cache")).subject  # the old key still works while published


def test_unknown_kids_cannot_make_the_service_hammer_the_idp() -> None:
    idp, clock = FakeIdp(OLD), Clock()
    keys = make(idp, clock, min_refresh_seconds=10)
    v = verifier(keys)
    v.verify(OLD.token("cache"))
    settle(keys)
    clock.now += 11
    for i in range(200):
        forged = SigningKey.generate("RS256", f"random-{i}") if i < 3 else OLD
        code, text = status(lambda f=forged, i=i: v.verify(f.token("cache", kid=f"random-{i}")))
        assert code == 401
        assert "does not know" in text
    assert idp.calls == 2, "200 unknown kids in one window: one refetch"
    clock.now += 10
    status(lambda: v.verify(OLD.token("cache", kid="yet-another")))
    assert idp.calls == 3, "the next window allows one more"


def test_a_down_jwks_keeps_the_last_good_keys_and_retries_at_the_rate_limit() -> None:
    idp, clock = FakeIdp(OLD), Clock()
    keys = make(idp, clock, cache_seconds=60, min_refresh_seconds=10)
    v = verifier(keys)
    v.verify(OLD.token("cache"))
    settle(keys)
    idp.failing = True
    for _ in range(30):  # one hour of traffic, an expired cache, an IdP that is down
        clock.now += 120
        for _ in range(20):
            assert v.verify(OLD.token("cache")).subject == "developer"
        settle(keys)
    assert idp.calls == 1 + 30, "one retry per request burst, not one per request"
    code, text = status(lambda: v.verify(NEW.token("cache")))
    assert (code, "does not know" in text) == (401, True)


def test_never_loaded_is_401_saying_so_and_a_hanging_idp_delays_only_by_the_timeout() -> None:
    idp, clock = FakeIdp(OLD), Clock()
    idp.gate = threading.Event()
    keys = make(idp, clock, timeout=0.3)
    v = TokenVerifier(keys=keys, algorithms=["RS256"], audience="strata-cache", wait_for_keys=0.3)
    started = time.monotonic()
    code, text = status(lambda: v.verify(OLD.token("cache")))
    elapsed = time.monotonic() - started
    assert code == 401
    assert "could not be fetched" in text
    assert 0.25 < elapsed < 2.0, elapsed
    # A second request while the same fetch still hangs: no new fetch, waits again at most 0.3 s.
    status(lambda: v.verify(OLD.token("cache")))
    assert idp.calls == 1
    idp.gate.set()
    settle(keys)
    assert v.verify(OLD.token("cache")).subject == "developer"


def test_an_event_loop_never_blocks_it_awaits_the_fetch() -> None:
    idp, clock = FakeIdp(OLD), Clock()
    idp.gate = threading.Event()
    keys = make(idp, clock, timeout=5.0)
    cache = CachingVerifier(
        TokenVerifier(keys=keys, algorithms=["RS256"], audience="strata-cache", wait_for_keys=0)
    )
    header = f"Bearer {OLD.token('cache', 'cache:read')}"

    async def scenario() -> tuple[int, bool]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        # Blocking the loop would freeze the ticker; release the fetch from another thread.
        threading.Timer(0.2, idp.gate.set).start()
        await cache.prepare(header)
        task.cancel()
        return ticks, cache.verify_header(header).scopes == {"cache:read"}

    ticks, ok = asyncio.run(scenario())
    assert ok
    assert ticks >= 5, "the loop kept running while the JWKS was fetched"


def test_a_non_blocking_verifier_answers_401_at_once_without_waiting() -> None:
    idp, clock = FakeIdp(OLD), Clock()
    idp.gate = threading.Event()
    keys = make(idp, clock)
    v = TokenVerifier(keys=keys, algorithms=["RS256"], audience="strata-cache", wait_for_keys=0)
    started = time.monotonic()
    assert status(lambda: v.verify(OLD.token("cache")))[0] == 401
    assert time.monotonic() - started < 0.5
    idp.gate.set()
    settle(keys)


def test_a_removed_key_stops_working_even_for_cached_tokens() -> None:
    idp, clock = FakeIdp(OLD, NEW), Clock()
    keys = make(idp, clock, cache_seconds=60)
    cache = CachingVerifier(verifier(keys))
    old_header = f"Bearer {OLD.token('cache', 'cache:read', ttl=3600)}"
    new_header = f"Bearer {NEW.token('cache', 'cache:read', ttl=3600)}"
    assert cache.verify_header(old_header).subject
    assert cache.verify_header(new_header).subject
    settle(keys)
    idp.keys = [NEW]  # the old key is withdrawn (rotated out, or compromised)
    clock.now += 61
    cache.verify_header(new_header)  # stale set: a refetch starts
    settle(keys)
    code, text = status(lambda: cache.verify_header(old_header))
    assert (code, "does not know" in text) == (401, True)
    assert cache.verify_header(new_header).subject  # re-verified once, still good


def test_a_cached_principal_never_outlives_its_token(monkeypatch) -> None:
    idp, clock = FakeIdp(OLD), Clock()
    inner = verifier(make(idp, clock))
    calls: list[str | None] = []
    original = inner.verify_header
    monkeypatch.setattr(inner, "verify_header", lambda h: calls.append(h) or original(h))
    cache = CachingVerifier(inner)
    # Expired 5 s ago: still inside the 10 s clock-skew leeway, so it verifies ...
    header = f"Bearer {OLD.token('cache', ttl=-5)}"
    for _ in range(3):
        assert cache.verify_header(header).subject
    # ... but is never served from the cache: every use is verified again.
    assert len(calls) == 3


def test_jwks_key_confusion_and_alg_mismatch_are_refused() -> None:

    idp, clock = FakeIdp(OLD, EC), Clock()
    keys = make(idp, clock, ("RS256", "ES256"))
    v = verifier(keys, ("RS256", "ES256"))
    v.verify(OLD.token("cache"))
    settle(keys)
    # HS256 with the published public key as the secret.
    for secret in (OLD.public_pem.encode(), json.dumps(OLD.jwk()).encode()):
        forged = forged_hs256(secret, "strata-cache")
        assert "algorithm must be" in status(lambda f=forged: v.verify(f))[1]
    assert "algorithm must be" in status(lambda: v.verify(unsigned("strata-cache", kid="ec-1")))[1]
    # An ES256 signature presented under the RSA key's kid: the key is bound to RS256.
    assert status(lambda: v.verify(EC.token("cache", kid=OLD.kid)))[0] == 401


def test_a_key_set_keeps_only_usable_signing_keys() -> None:
    rsa_enc = {**OLD.jwk(), "use": "enc", "kid": "enc"}
    es384 = {**EC.jwk(), "alg": "ES384", "kid": "es384"}
    secret = {"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA", "kid": "hs"}
    private = {**OLD.jwk(), "kid": "private", "d": "AQAB"}
    body = json.dumps({"keys": [rsa_enc, es384, secret, private, NEW.jwk(), "junk"]}).encode()
    assert set(parse_key_set(body, {"RS256", "ES256"})) == {NEW.kid}
    for bad in (b"not json", b"[]", b'{"keys": []}', json.dumps({"keys": [secret]}).encode()):
        with pytest.raises(ValueError, match="JWKS"):
            parse_key_set(bad, {"RS256"})


def test_a_token_without_kid_is_accepted_only_against_a_single_key_set() -> None:
    idp, clock = FakeIdp(OLD), Clock()
    keys = make(idp, clock, min_refresh_seconds=10)
    v = verifier(keys)
    no_kid = OLD.token("cache", kid="")
    assert v.verify(no_kid).subject
    settle(keys)
    idp.keys = [OLD, NEW]
    clock.now += 400
    v.verify(OLD.token("cache"))
    settle(keys)
    assert status(lambda: v.verify(no_kid))[0] == 401
