"""Algorithms and public keys: what a service accepts, and the attacks it must refuse.

Key confusion (an HS256 token "signed" with the service's public key as the secret),
``alg: none``, an algorithm the configuration did not name, and a service handed a
private key or a secret it does not need.
"""

from __future__ import annotations

import datetime
import json
import time
from typing import Any

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from services.common.auth import TokenVerifier
from services.common.keys import StaticKey, check_algorithms, load_public_key
from services.common.problems import Problem
from services.common.settings import ServiceSettings
from tests.support.jwks import SigningKey, b64url, forged_hs256, unsigned

RSA = SigningKey.generate("RS256", "rsa-1")
EC = SigningKey.generate("ES256", "ec-1")


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="STRATA_DEMO_", frozen=True, extra="ignore")


def static_verifier(key: SigningKey, service: str = "critical") -> TokenVerifier:
    return TokenVerifier(
        keys=StaticKey(load_public_key(key.public_pem, [key.algorithm])),
        algorithms=[key.algorithm],
        audience=f"strata-{service}",
    )


def detail(call: Any) -> str:
    with pytest.raises(Problem) as info:
        call()
    assert info.value.status == 401
    assert info.value.headers["WWW-Authenticate"].startswith("Bearer")
    return info.value.detail


@pytest.mark.parametrize("key", [RSA, EC], ids=["RS256", "ES256"])
def test_a_public_key_verifies_its_own_algorithm(key: SigningKey) -> None:
    who = static_verifier(key).verify(key.token("critical", "accounts:read"))
    assert who.scopes == {"accounts:read"}
    other = SigningKey.generate(key.algorithm, key.kid)
    assert "invalid" in detail(lambda: static_verifier(key).verify(other.token("critical")))


@pytest.mark.parametrize("key", [RSA, EC], ids=["RS256", "ES256"])
def test_key_confusion_hs256_signed_with_the_public_key_is_refused(key: SigningKey) -> None:
    verifier = static_verifier(key)
    pem = key.public_pem.encode()
    for secret in (pem, pem.strip(), key.public_pem.strip().encode()):
        assert "algorithm must be" in detail(
            lambda s=secret: verifier.verify(forged_hs256(s, "strata-critical"))
        )


def test_alg_none_is_refused_whatever_the_configuration() -> None:
    for verifier in (static_verifier(RSA), static_verifier(EC), TokenVerifier.hs256("h" * 40, "a")):
        token = unsigned(verifier.audience)
        assert "algorithm must be" in detail(lambda v=verifier, t=token: v.verify(t))
        for alg in ("None", "NONE", ""):
            head = b64url(json.dumps({"alg": alg}).encode())
            forged = head + token[token.index(".") :]
            assert detail(lambda v=verifier, t=forged: v.verify(t))


def test_an_algorithm_the_configuration_did_not_name_is_refused() -> None:
    # ES256 token to an RS256-only service (even with a valid ES256 signature) ...
    assert "RS256" in detail(lambda: static_verifier(RSA).verify(EC.token("critical")))
    # ... RS384/RS512 with the very key the service trusts ...
    for alg in ("RS384", "RS512", "PS256"):
        token = jwt.encode(
            {"sub": "x", "aud": "strata-critical", "exp": time.time() + 60}, RSA.private, alg
        )
        assert detail(lambda t=token: static_verifier(RSA).verify(t))
    # ... and HS256 to an RS256 service with any secret at all.
    hs = jwt.encode({"sub": "x", "aud": "strata-critical", "exp": time.time() + 60}, "k" * 40)
    assert "algorithm must be" in detail(lambda: static_verifier(RSA).verify(hs))


def test_an_hs256_service_refuses_rs256_and_es256_tokens() -> None:
    verifier = TokenVerifier.hs256("h" * 40, "strata-critical")
    for key in (RSA, EC):
        assert "HS256" in detail(lambda k=key: verifier.verify(k.token("critical")))


def test_algorithm_lists_never_mix_hs256_with_asymmetric() -> None:
    check_algorithms(["RS256", "ES256"])
    for bad in ([], ["HS256", "RS256"], ["ES256", "HS256"]):
        with pytest.raises(ValueError, match="jwt_algorithms"):
            check_algorithms(bad)
    with pytest.raises(ValueError, match="mix"):
        TokenVerifier(keys=StaticKey("x" * 40), algorithms=["HS256", "RS256"], audience="a")


def test_public_keys_are_checked_at_load() -> None:
    assert load_public_key(RSA.public_pem, ["RS256"]).algorithm_name == "RS256"
    assert load_public_key(EC.public_pem, ["RS256", "ES256"]).algorithm_name == "ES256"
    with pytest.raises(ValueError, match="PRIVATE"):
        load_public_key(RSA.private_pem, ["RS256"])
    with pytest.raises(ValueError, match="not a PEM public key"):
        load_public_key("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----", ["RS256"])
    with pytest.raises(ValueError, match="verifies ES256"):
        load_public_key(EC.public_pem, ["RS256"])
    # A weak key on purpose: the service must refuse it.
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505
    pem = small.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    with pytest.raises(ValueError, match="2048"):
        load_public_key(pem, ["RS256"])
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    pem = p384.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    with pytest.raises(ValueError, match="P-256"):
        load_public_key(pem, ["ES256"])


def test_a_certificate_is_accepted_as_the_public_key() -> None:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(RSA.private.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(RSA.private, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    verifier = TokenVerifier(
        keys=StaticKey(load_public_key(pem, ["RS256"])), algorithms=["RS256"], audience="strata-ml"
    )
    assert verifier.verify(RSA.token("ml", "docs:read")).scopes == {"docs:read"}


def test_settings_accept_rs256_es256_with_a_key_or_a_jwks_url(monkeypatch, tmp_path) -> None:
    pem = tmp_path / "public.pem"
    pem.write_text(RSA.public_pem)
    monkeypatch.setenv("STRATA_DEMO_JWT_ALGORITHMS", "rs256")
    monkeypatch.setenv("STRATA_DEMO_JWT_PUBLIC_KEY_FILE", str(pem))
    settings = DemoSettings()
    assert settings.jwt_algorithms == ["RS256"]
    verifier = TokenVerifier.for_service(settings, "demo")
    assert verifier.verify(RSA.token("demo", "x")).scopes == {"x"}
    monkeypatch.delenv("STRATA_DEMO_JWT_PUBLIC_KEY_FILE")
    jwks = DemoSettings(
        jwt_algorithms=["RS256", "ES256"], jwt_jwks_url="https://idp.example/jwks.json"
    )
    assert jwks.jwt_jwks_url == "https://idp.example/jwks.json"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"jwt_algorithms": "RS256"}, "needs jwt_public_key .* or jwt_jwks_url"),
        ({"jwt_algorithms": "ES256"}, "needs jwt_public_key .* or jwt_jwks_url"),
        (
            {"jwt_algorithms": "RS256", "jwt_public_key": RSA.private_pem},
            "PRIVATE key",
        ),
        (
            {"jwt_algorithms": "RS256", "jwt_public_key": EC.public_pem},
            "verifies ES256 tokens, but jwt_algorithms is RS256",
        ),
        (
            {"jwt_algorithms": "RS256", "jwt_public_key": RSA.public_pem, "jwt_secret": "s" * 40},
            "jwt_secret must not be set with RS256/ES256",
        ),
        (
            {
                "jwt_algorithms": "RS256",
                "jwt_public_key": RSA.public_pem,
                "jwt_jwks_url": "https://idp.example/jwks",
            },
            "not both",
        ),
        (
            {"jwt_algorithms": "ES256", "jwt_jwks_url": "http://idp.example/jwks"},
            "https://",
        ),
        ({"jwt_algorithms": "ES256", "jwt_jwks_url": "file:///etc/jwks"}, "https://"),
        ({"jwt_algorithms": "HS256,RS256", "jwt_secret": "s" * 40}, "must not mix"),
        ({"jwt_algorithms": "HS512", "jwt_secret": "s" * 40}, "jwt_algorithms"),
        ({"jwt_algorithms": "none", "jwt_secret": "s" * 40}, "jwt_algorithms"),
        (
            {"jwt_secret": "s" * 40, "jwt_jwks_url": "https://idp.example/jwks"},
            "HS256 verifies with jwt_secret",
        ),
    ],
)
def test_settings_refuse_to_start_with_a_clear_message(
    monkeypatch, fields: dict[str, str], message: str
) -> None:
    for name, value in fields.items():
        monkeypatch.setenv(f"STRATA_DEMO_{name.upper()}", value)
    with pytest.raises(ValidationError, match=message):
        DemoSettings()


def test_http_jwks_only_in_development() -> None:
    settings = DemoSettings(
        environment="development", jwt_algorithms=["ES256"], jwt_jwks_url="http://127.0.0.1/j"
    )
    assert settings.jwt_jwks_url == "http://127.0.0.1/j"


def test_the_legacy_single_algorithm_variable_still_counts(monkeypatch) -> None:
    monkeypatch.setenv("STRATA_DEMO_JWT_ALGORITHM", "ES256")
    monkeypatch.setenv("STRATA_DEMO_JWT_PUBLIC_KEY", EC.public_pem)
    assert DemoSettings().jwt_algorithms == ["ES256"]


def test_a_migration_process_needs_no_key() -> None:
    class Migrate(DemoSettings):
        @classmethod
        def verifies_tokens(cls) -> bool:
            return False

    assert Migrate(jwt_algorithms=["RS256"]).jwt_algorithms == ["RS256"]
