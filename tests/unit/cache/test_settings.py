"""STRATA_CACHE_* parsing: defaults, secrets from files, URL checks, pool options."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from redis.asyncio import BlockingConnectionPool
from redis.asyncio.connection import Connection, SSLConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.cache.settings import CacheSettings
from services.cache.store import make_pool


def test_defaults_match_docs_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATA_CACHE_ENVIRONMENT", "development")
    settings = CacheSettings()
    assert settings.redis_url == "redis://localhost:6379/0"
    assert (settings.redis_socket_timeout, settings.redis_connect_timeout) == (0.5, 0.5)
    assert settings.redis_max_connections == 64
    assert settings.max_value_bytes == 1_048_576
    assert settings.max_batch == 1000
    assert (settings.host, settings.port, settings.workers) == ("0.0.0.0", 8000, None)
    assert settings.store_timeout == 1.0


def test_production_refuses_a_missing_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="jwt_secret"):
        CacheSettings()


def test_password_from_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "redis-password"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("STRATA_CACHE_ENVIRONMENT", "development")
    monkeypatch.setenv("STRATA_CACHE_REDIS_PASSWORD_FILE", str(secret))
    settings = CacheSettings()
    assert settings.redis_password is not None
    assert settings.redis_password.get_secret_value() == "from-a-file"
    assert "from-a-file" not in repr(settings)


def test_unknown_url_scheme_is_refused() -> None:
    with pytest.raises(ValidationError, match="redis_url"):
        CacheSettings(environment="development", redis_url="http://localhost:6379")


def test_pool_takes_timeouts_and_explicit_credentials_over_the_url() -> None:
    settings = CacheSettings(
        environment="development",
        redis_url="redis://urluser:urlpass@redis.example:6380/3",
        redis_username="acl-user",
        redis_password="explicit",
        redis_socket_timeout=0.2,
        redis_connect_timeout=0.3,
        redis_max_connections=7,
    )
    pool = make_pool(settings)
    kwargs = pool.connection_kwargs
    assert pool.connection_class is Connection
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("redis.example", 6380, 3)
    assert (kwargs["username"], kwargs["password"]) == ("acl-user", "explicit")
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.2, 0.3)
    assert pool.max_connections == 7
    # A burst waits for a free connection for one socket timeout instead of failing at once.
    assert isinstance(pool, BlockingConnectionPool)
    assert pool.timeout == settings.pool_timeout == 0.2
    retry = kwargs["retry"]
    assert retry.get_retries() == 1
    assert RedisConnectionError in retry._supported_errors
    assert RedisTimeoutError not in retry._supported_errors  # a hung Redis is never waited twice


def test_url_credentials_are_used_when_no_variable_is_set() -> None:
    settings = CacheSettings(environment="development", redis_url="redis://:pw@h:1/0")
    assert make_pool(settings).connection_kwargs["password"] == "pw"


def test_rediss_uses_tls_with_an_optional_ca_file(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("pem")
    settings = CacheSettings(
        environment="development", redis_url="rediss://h:6379/0", redis_tls_ca_file=str(ca)
    )
    pool = make_pool(settings)
    assert pool.connection_class is SSLConnection
    assert pool.connection_kwargs["ssl_ca_certs"] == str(ca)
    assert "ssl_check_hostname" not in pool.connection_kwargs  # redis-py's default: checked


def test_tls_files_need_a_rediss_url(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("pem")
    # With redis:// the CA would be ignored (and redis-py's plain connection refuses it).
    with pytest.raises(ValidationError, match="need TLS"):
        CacheSettings(environment="development", redis_tls_ca_file=str(ca))


def test_tls_files_must_be_readable_and_pairs_complete(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read"):
        CacheSettings(
            environment="development",
            redis_url="rediss://h:6379/0",
            redis_tls_ca_file=str(tmp_path / "missing.pem"),
        )
    cert = tmp_path / "client.crt"
    cert.write_text("pem")
    with pytest.raises(ValidationError, match="go together"):
        CacheSettings(
            environment="development", redis_url="rediss://h:6379/0", redis_tls_cert_file=str(cert)
        )


def test_client_certificate_reaches_the_pool(tmp_path: Path) -> None:
    cert, key = tmp_path / "client.crt", tmp_path / "client.key"
    cert.write_text("pem")
    key.write_text("pem")
    settings = CacheSettings(
        environment="development",
        redis_url="rediss://h:6379/0",
        redis_tls_cert_file=str(cert),
        redis_tls_key_file=str(key),
    )
    kwargs = make_pool(settings).connection_kwargs
    assert (kwargs["ssl_certfile"], kwargs["ssl_keyfile"]) == (str(cert), str(key))
