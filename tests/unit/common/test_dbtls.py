"""sslmode and CA bundle of both PostgreSQL tiers: libpq's meaning, for libpq and asyncpg."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.common import dbtls
from services.critical.settings import CriticalSettings
from services.ml.settings import MlDatabaseSettings
from tests.support.testca import TestCa, make_ca


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    """A real CA file (asyncpg's context loads it)."""
    return make_ca(tmp_path_factory.mktemp("ca"))


def critical(**values: object) -> CriticalSettings:
    return CriticalSettings(environment="development", **values)  # type: ignore[arg-type]


def ml(**values: object) -> MlDatabaseSettings:
    return MlDatabaseSettings(**values)  # type: ignore[arg-type]


def test_default_is_prefer_as_before_on_both_tiers() -> None:
    assert critical().libpq_parameters() == {"sslmode": "prefer"}
    assert critical().url().query == {"sslmode": "prefer"}
    assert ml().asyncpg_ssl() == "prefer"


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer"])
def test_modes_that_never_verify_go_to_asyncpg_by_name(mode: str) -> None:
    assert ml(database_sslmode=mode).asyncpg_ssl() == mode


def test_verify_full_checks_chain_and_name(ca: TestCa) -> None:
    settings = ml(database_sslmode="verify-full", database_sslrootcert=ca.ca_file)
    context = settings.asyncpg_ssl()
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is True
    params = critical(database_sslmode="verify-full", database_sslrootcert=ca.ca_file)
    assert params.libpq_parameters() == {"sslmode": "verify-full", "sslrootcert": ca.ca_file}


def test_verify_ca_checks_the_chain_only(ca: TestCa) -> None:
    context = ml(database_sslmode="verify-ca", database_sslrootcert=ca.ca_file).asyncpg_ssl()
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is False


def test_require_encrypts_and_verifies_only_with_a_ca(ca: TestCa) -> None:
    bare = ml(database_sslmode="require").asyncpg_ssl()
    assert isinstance(bare, ssl.SSLContext)
    assert bare.verify_mode is ssl.CERT_NONE
    with_ca = ml(database_sslmode="require", database_sslrootcert=ca.ca_file).asyncpg_ssl()
    assert isinstance(with_ca, ssl.SSLContext)
    assert with_ca.verify_mode is ssl.CERT_REQUIRED
    assert with_ca.check_hostname is False
    libpq = critical(database_sslmode="require", database_sslrootcert=ca.ca_file)
    assert libpq.libpq_parameters()["sslmode"] == "verify-ca"


def test_verify_without_a_bundle_uses_the_system_store(
    monkeypatch: pytest.MonkeyPatch, ca: TestCa
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", ca.ca_file)
    settings = critical(database_sslmode="verify-full")
    assert settings.libpq_parameters()["sslrootcert"] == ca.ca_file


def test_verify_without_any_bundle_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dbtls, "system_ca_bundle", lambda: None)
    with pytest.raises(ValidationError, match="needs a CA bundle"):
        ml(database_sslmode="verify-full")


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer"])
def test_a_bundle_with_a_mode_that_never_verifies_is_refused(mode: str, ca: TestCa) -> None:
    with pytest.raises(ValidationError, match="never verifies"):
        critical(database_sslmode=mode, database_sslrootcert=ca.ca_file)


def test_unknown_mode_and_missing_files_are_refused(tmp_path: Path, ca: TestCa) -> None:
    with pytest.raises(ValidationError, match="sslmode"):
        ml(database_sslmode="verify")
    with pytest.raises(ValidationError, match="cannot read"):
        ml(database_sslmode="verify-full", database_sslrootcert=str(tmp_path / "none.crt"))
    with pytest.raises(ValidationError, match="go together"):
        ml(database_sslmode="require", database_sslcert=ca.ca_file)


def test_client_certificate_reaches_both_drivers(tmp_path: Path, ca: TestCa) -> None:
    pair = ca.issue("client", ("strata",))
    values = {
        "database_sslmode": "verify-full",
        "database_sslrootcert": ca.ca_file,
        "database_sslcert": pair.cert_file,
        "database_sslkey": pair.key_file,
    }
    params = critical(**values).libpq_parameters()
    assert (params["sslcert"], params["sslkey"]) == (pair.cert_file, pair.key_file)
    assert isinstance(ml(**values).asyncpg_ssl(), ssl.SSLContext)  # the chain loaded
    with pytest.raises(ValidationError, match="require or above"):
        ml(
            database_sslmode="prefer",
            database_sslcert=pair.cert_file,
            database_sslkey=pair.key_file,
        )
