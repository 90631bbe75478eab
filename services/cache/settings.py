"""Settings of the cache service (``STRATA_CACHE_*``), parsed once at start-up."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

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
    redis_tls_ca_file: str | None = None
    # Together these bound how long any request can wait on Redis (no retries on timeouts).
    redis_socket_timeout: float = Field(default=0.5, gt=0, le=30)
    redis_connect_timeout: float = Field(default=0.5, gt=0, le=30)
    redis_max_connections: int = Field(default=64, ge=1, le=10_000)

    max_value_bytes: int = Field(default=1_048_576, ge=16)
    max_batch: int = Field(default=1000, ge=1, le=100_000)
    retry_after_seconds: int = Field(default=1, ge=1, le=3600)

    @classmethod
    def secret_file_fields(cls) -> tuple[str, ...]:
        """``STRATA_CACHE_REDIS_PASSWORD_FILE`` may hold the Redis password."""
        return ("redis_password",)

    @field_validator("redis_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = urlparse(value).scheme
        if scheme not in ("redis", "rediss", "unix"):
            raise ValueError("redis_url must start with redis://, rediss:// or unix://")
        return value

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
        if self.redis_tls_ca_file:
            options["ssl_ca_certs"] = self.redis_tls_ca_file
        return options
