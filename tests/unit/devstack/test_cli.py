"""`strata token`: development HS256 tokens, and RS256/ES256 with a local key pair."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest

from services.common.auth import TokenVerifier
from services.common.keys import StaticKey, load_public_key
from services.common.settings import DEV_JWT_SECRET
from services.devstack.cli import main
from tests.support.jwks import SigningKey


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as done:
        main(["token", *args])
    assert done.value.code == 0
    return capsys.readouterr().out.strip()


def test_development_tokens_use_the_dev_secret_or_strata_jwt_secret(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRATA_JWT_SECRET", raising=False)
    token = run(capsys, "--service", "cache", "--scope", "cache:read")
    who = TokenVerifier.hs256(DEV_JWT_SECRET, "strata-cache").verify(token)
    assert who.scopes == {"cache:read"}
    monkeypatch.setenv("STRATA_JWT_SECRET", "c" * 40)
    token = run(capsys, "--service", "critical")
    who = TokenVerifier.hs256("c" * 40, "strata-critical").verify(token)
    assert "ledger:admin" in who.scopes


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_a_private_key_file_mints_tokens_its_public_key_verifies(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, algorithm: str
) -> None:
    key = SigningKey.generate(algorithm, "local-1")
    private = tmp_path / "private.pem"
    private.write_text(key.private_pem)
    token = run(
        capsys, "--service", "ml", "--private-key", str(private), "--kid", "local-1",
        "--issuer", "https://idp.example", "--scope", "docs:read",
    )  # fmt: skip
    assert jwt.get_unverified_header(token) == {"alg": algorithm, "kid": "local-1", "typ": "JWT"}
    verifier = TokenVerifier(
        keys=StaticKey(load_public_key(key.public_pem, [algorithm])),
        algorithms=[algorithm],
        audience="strata-ml",
        issuer="https://idp.example",
    )
    assert verifier.verify(token).scopes == {"docs:read"}
