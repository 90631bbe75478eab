"""Token verification with configured keys: HS256 and an RS256 PEM, audience, expiry, scopes,
the verified-token cache. (JWKS: test_jwks.py; algorithms and key confusion: test_keys.py.)"""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.common.auth import TokenVerifier, mint_token
from services.common.cache import CachingVerifier
from services.common.keys import StaticKey, load_public_key
from services.common.problems import Problem

SECRET = "unit-test-secret-that-is-long-enough-0123"


def _verifier(**kw) -> TokenVerifier:
    return TokenVerifier.hs256(SECRET, "strata-critical", **kw)


def _status(call) -> int:
    with pytest.raises(Problem) as info:
        call()
    return info.value.status


def test_valid_hs256_token_yields_subject_and_scopes() -> None:
    token = mint_token(key=SECRET, audience="strata-critical", scopes=["a:r", "b:w"], subject="s1")
    who = _verifier().verify_header(f"Bearer {token}")
    assert who.subject == "s1"
    assert who.scopes == {"a:r", "b:w"}
    who.require("a:r")
    assert _status(lambda: who.require("c:x")) == 403


def test_rejections_are_401() -> None:
    v = _verifier()
    wrong_aud = mint_token(key=SECRET, audience="strata-ml", scopes=[])
    expired = mint_token(key=SECRET, audience="strata-critical", scopes=[], ttl=-100)
    forged = mint_token(key="x" * 40, audience="strata-critical", scopes=[])
    for header in (
        None,
        "",
        "Bearer",
        "Token abc",
        f"Bearer {wrong_aud}",
        f"Bearer {expired}",
        f"Bearer {forged}",
        "Bearer a.b.c",
    ):
        assert _status(lambda h=header: v.verify_header(h)) == 401, header


def test_alg_none_and_alg_confusion_are_rejected() -> None:
    unsigned = jwt.encode(
        {"sub": "x", "aud": "strata-critical", "exp": int(time.time()) + 60}, None, algorithm="none"
    )
    assert _status(lambda: _verifier().verify(unsigned)) == 401


def test_rs256_with_a_public_key() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    token = mint_token(key=pem, audience="strata-ml", scopes=["docs:read"], algorithm="RS256")
    v = TokenVerifier(
        keys=StaticKey(load_public_key(public, ["RS256"])),
        algorithms=["RS256"],
        audience="strata-ml",
    )
    assert v.verify(token).scopes == {"docs:read"}
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = mint_token(key=other, audience="strata-ml", scopes=[], algorithm="RS256")
    assert _status(lambda: v.verify(forged)) == 401
    hs = jwt.encode({"sub": "x", "aud": "strata-ml", "exp": int(time.time()) + 60}, "k" * 40)
    assert _status(lambda: v.verify(hs)) == 401  # HS256 where RS256 is configured


def test_issuer_is_enforced_when_configured() -> None:
    v = _verifier(issuer="https://issuer.example")
    good = mint_token(
        key=SECRET, audience="strata-critical", scopes=[], issuer="https://issuer.example"
    )
    bad = mint_token(key=SECRET, audience="strata-critical", scopes=[], issuer="https://evil")
    assert v.verify(good).subject == "developer"
    assert _status(lambda: v.verify(bad)) == 401


def test_cache_serves_repeats_and_drops_expired_tokens(monkeypatch) -> None:
    calls = []
    inner = _verifier(leeway=0)
    original = inner.verify_header
    monkeypatch.setattr(inner, "verify_header", lambda h: calls.append(h) or original(h))
    cache = CachingVerifier(inner)
    token = mint_token(key=SECRET, audience="strata-critical", scopes=["x"], ttl=60)
    for _ in range(3):
        assert cache.verify_header(f"Bearer {token}").scopes == {"x"}
    assert len(calls) == 1
    now = time.time()
    # Past the token's expiry the cache must not answer: it asks the verifier again.
    monkeypatch.setattr(time, "time", lambda: now + 120)
    cache.verify_header(f"Bearer {token}")
    assert len(calls) == 2


def test_cache_never_remembers_failures(monkeypatch) -> None:
    # The verifier refuses a good token once (a key not fetched yet, say), then accepts it:
    # the cache must ask again each time, and must not answer the refusal a second time.
    inner = _verifier()
    original = inner.verify_header
    calls: list[str | None] = []

    def flaky(header: str | None):
        calls.append(header)
        if len(calls) == 1:
            raise Problem(401, "unauthorized", "not yet")
        return original(header)

    monkeypatch.setattr(inner, "verify_header", flaky)
    cache = CachingVerifier(inner)
    token = mint_token(key=SECRET, audience="strata-critical", scopes=["x"], ttl=60)
    assert _status(lambda: cache.verify_header(f"Bearer {token}")) == 401
    assert cache.verify_header(f"Bearer {token}").scopes == {"x"}
    assert len(calls) == 2
    # Bad tokens are verified (and refused) every time, never answered from memory.
    for n in range(3):
        assert _status(lambda: cache.verify_header("Bearer nope")) == 401
        assert len(calls) == 3 + n


def _detail(call) -> str:
    with pytest.raises(Problem) as info:
        call()
    assert info.value.status == 401
    return info.value.detail


def test_a_token_that_is_not_ascii_is_401_not_an_error() -> None:
    # Servers hand over header bytes that are not UTF-8 as surrogate escapes ("\udcff").
    for header in ("Bearer \udcff\udcfe", "Bearer é.b.c", "Bearer a.\udcff.c"):
        assert "ASCII" in _detail(lambda h=header: _verifier().verify_header(h))
        assert "ASCII" in _detail(lambda h=header: CachingVerifier(_verifier()).verify_header(h))


@pytest.mark.parametrize("subject", ["", "   ", "x" * 256])
def test_blank_or_overlong_subjects_are_refused(subject: str) -> None:
    token = mint_token(key=SECRET, audience="strata-critical", scopes=[], subject=subject)
    assert "sub" in _detail(lambda: _verifier().verify(token))


def test_a_255_character_subject_is_accepted() -> None:
    token = mint_token(key=SECRET, audience="strata-critical", scopes=[], subject="s" * 255)
    assert _verifier().verify(token).subject == "s" * 255


def test_a_subject_that_is_not_a_string_is_refused() -> None:
    token = jwt.encode({"sub": 42, "aud": "strata-critical", "exp": int(time.time()) + 60}, SECRET)
    _detail(lambda: _verifier().verify(token))
