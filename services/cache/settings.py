"""Settings of the cache service (``STRATA_CACHE_*``), parsed once at start-up."""

from __future__ import annotations

from typing import Annotated, Any, Self
from urllib.parse import urlparse

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.common.dbtls import check_readable
from services.common.settings import ServiceSettings

#: Longest TTL the API accepts (one year), in seconds.
MAX_TTL = 31_536_000


class CacheSettings(ServiceSettings):
    """Every ``STRATA_CACHE_*`` variable; see docs/configuration.md (the cache table)."""

    model_config = SettingsConfigDict(env_prefix="STRATA_CACHE_", frozen=True, extra="ignore")

    service_name: str = "cache"
    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int | None = Field(default=None, ge=1, le=64)

    redis_url: str = "redis://localhost:6379/0"
    redis_username: str | None = None
    redis_password: SecretStr | None = None
    # TLS (a rediss:// URL): the server's certificate is always verified, its name too
    # (redis-py's defaults; ?ssl_check_hostname=false in the URL turns the name check off).
    # The CA bundle is trusted besides the system's store; a client certificate and key
    # for servers that ask for one (Redis's tls-auth-clients).
    redis_tls_ca_file: str | None = None
    redis_tls_cert_file: str | None = None
    redis_tls_key_file: str | None = None
    # Together these bound how long any request can wait on Redis (no retries on timeouts).
    redis_socket_timeout: float = Field(default=0.5, gt=0, le=30)
    redis_connect_timeout: float = Field(default=0.5, gt=0, le=30)
    redis_max_connections: int = Field(default=64, ge=1, le=10_000)

    # Sentinel mode (docs/cache.md): when set, the master comes from these Sentinels
    # ("host:port,host:port") and the URL only gives the database number.
    redis_sentinels: Annotated[list[str], NoDecode] = Field(default_factory=list)
    redis_sentinel_master: str = Field(default="mymaster", min_length=1)
    redis_sentinel_username: str | None = None
    redis_sentinel_password: SecretStr | None = None
    # The Sentinels serve TLS too (same CA and client certificate as the data connections).
    redis_sentinel_tls: bool = False
    # How often each worker asks Sentinel where the master is (also at once after an error).
    redis_sentinel_check_interval: float = Field(default=0.5, gt=0, le=60)

    max_value_bytes: int = Field(default=1_048_576, ge=16)
    max_batch: int = Field(default=1000, ge=1, le=100_000)
    retry_after_seconds: int = Field(default=1, ge=1, le=3600)

    @classmethod
    def secret_file_fields(cls) -> tuple[str, ...]:
        """``*_REDIS_PASSWORD_FILE`` and ``*_REDIS_SENTINEL_PASSWORD_FILE`` may hold passwords."""
        return ("redis_password", "redis_sentinel_password")

    @field_validator("redis_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = urlparse(value).scheme
        if scheme not in ("redis", "rediss", "unix"):
            raise ValueError("redis_url must start with redis://, rediss:// or unix://")
        return value

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _split_sentinels(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.startswith("["):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinel_addresses(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_address(item)
        return value

    @model_validator(mode="after")
    def _sentinel_needs_tcp(self) -> Self:
        if self.redis_sentinels and self.redis_scheme == "unix":
            raise ValueError("redis_sentinels needs a redis:// or rediss:// URL, not unix://")
        return self

    @model_validator(mode="after")
    def _tls_files(self) -> Self:
        """TLS files only with TLS, both halves of a key pair, and every file readable."""
        tls = self.redis_scheme == "rediss" or self.redis_sentinel_tls
        files = (self.redis_tls_ca_file, self.redis_tls_cert_file, self.redis_tls_key_file)
        if any(files) and not tls:
            raise ValueError(
                "redis_tls_* files need TLS: a rediss:// URL (or redis_sentinel_tls); "
                "with redis:// they would be ignored"
            )
        if self.redis_sentinel_tls and not self.redis_sentinels:
            raise ValueError("redis_sentinel_tls needs redis_sentinels")
        if bool(self.redis_tls_cert_file) != bool(self.redis_tls_key_file):
            raise ValueError("redis_tls_cert_file and redis_tls_key_file go together")
        check_readable("redis_tls_ca_file", self.redis_tls_ca_file)
        check_readable("redis_tls_cert_file", self.redis_tls_cert_file)
        check_readable("redis_tls_key_file", self.redis_tls_key_file)
        return self

    @property
    def redis_scheme(self) -> str:
        """``redis``, ``rediss`` or ``unix``."""
        return urlparse(self.redis_url).scheme

    def tls_options(self) -> dict[str, Any]:
        """redis-py's ``ssl_*`` options from the TLS files (empty when none is set)."""
        options: dict[str, Any] = {}
        if self.redis_tls_ca_file:
            options["ssl_ca_certs"] = self.redis_tls_ca_file
        if self.redis_tls_cert_file and self.redis_tls_key_file:
            options["ssl_certfile"] = self.redis_tls_cert_file
            options["ssl_keyfile"] = self.redis_tls_key_file
        return options

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``redis_sentinels`` as (host, port) pairs; empty in standalone mode."""
        return [parse_address(item) for item in self.redis_sentinels]

    def sentinel_options(self) -> dict[str, Any]:
        """Connection options of the Sentinel clients (hold the password: never log them)."""
        options: dict[str, Any] = {
            "socket_timeout": self.redis_socket_timeout,
            "socket_connect_timeout": self.redis_connect_timeout,
        }
        if self.redis_sentinel_username:
            options["username"] = self.redis_sentinel_username
        if self.redis_sentinel_password:
            options["password"] = self.redis_sentinel_password.get_secret_value()
        if self.redis_sentinel_tls:
            # Sentinels are queried by resolved IP (sentinel.py): chain verified, name not.
            options.update(ssl=True, ssl_check_hostname=False, **self.tls_options())
        return options

    @property
    def pool_timeout(self) -> float:
        """How long a call waits for a pooled connection when all are busy: one socket timeout.

        A request then answers within connect + socket timeout plus this (docs/cache.md).
        """
        return self.redis_socket_timeout

    @property
    def store_timeout(self) -> float:
        """Upper bound of one Redis call: connect (when reconnecting) plus one reply."""
        return self.redis_connect_timeout + self.redis_socket_timeout

    def redis_options(self) -> dict[str, Any]:
        """Connection-pool keyword arguments (hold the password: never log them)."""
        options: dict[str, Any] = {
            "socket_timeout": self.redis_socket_timeout,
            "socket_connect_timeout": self.redis_connect_timeout,
            "max_connections": self.redis_max_connections,
        }
        if self.redis_username:
            options["username"] = self.redis_username
        if self.redis_password:
            options["password"] = self.redis_password.get_secret_value()
        if self.redis_scheme == "rediss":
            options.update(self.tls_options())
        return options


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as a pair; ValueError when malformed."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not host:port")
    return host, int(port)
