"""Settings shared by every service, read once from the environment at start-up.

Each service subclasses :class:`ServiceSettings` with its own ``env_prefix``
(``STRATA_CRITICAL_``, ``STRATA_ML_``, ``STRATA_CACHE_``). Secrets may come from
environment variables or from files (``<NAME>_FILE``), as Kubernetes mounts them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: The secret the developer CLI mints tokens with; refused outside development.
DEV_JWT_SECRET = "strata-development-secret-change-me-0123456789"  # noqa: S105
_PLACEHOLDERS = {"", "changeme", "change-me", "secret", DEV_JWT_SECRET}


class ServiceSettings(BaseSettings):
    """Settings every service has. Subclasses set ``model_config`` with their prefix."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    environment: Literal["development", "test", "production"] = "production"
    service_name: str = "strata"
    version: str = Field(default_factory=lambda: os.environ.get("STRATA_VERSION", "0.1.0"))
    revision: str = Field(default_factory=lambda: os.environ.get("STRATA_REVISION", "unknown"))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # JWT verification: HS256 with a shared secret, or RS256 with a public key (PEM).
    jwt_algorithm: Literal["HS256", "RS256"] = "HS256"
    jwt_secret: SecretStr | None = None
    jwt_public_key: str | None = None
    jwt_issuer: str | None = None
    jwt_leeway_seconds: int = Field(default=10, ge=0, le=300)

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # NoDecode: a plain comma-separated list in the environment, not JSON.
    cors_allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # How long SIGTERM keeps the server answering (readiness 503) before it drains.
    drain_seconds: float = Field(default=0.0, ge=0, le=120)

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        """Let ``<PREFIX><FIELD>_FILE`` point at a file holding a secret value."""
        if not isinstance(data, dict):
            return data
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name in ("jwt_secret", "jwt_public_key", *cls.secret_file_fields()):
            path = os.environ.get(f"{prefix}{name}_FILE".upper())
            if path and not data.get(name):
                data[name] = Path(path).read_text(encoding="utf-8").strip()
        return data

    @classmethod
    def secret_file_fields(cls) -> tuple[str, ...]:
        """Extra fields a subclass allows to be read from ``*_FILE``."""
        return ()

    @field_validator("cors_allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.startswith("["):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @classmethod
    def verifies_tokens(cls) -> bool:
        """Whether this process verifies tokens (a migration job does not need the key)."""
        return True

    @model_validator(mode="after")
    def _check_secrets(self) -> Self:
        if not self.verifies_tokens():
            return self
        if self.jwt_algorithm == "HS256":
            secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
            if self.environment == "production" and secret in _PLACEHOLDERS:
                raise ValueError(
                    "jwt_secret is missing or a placeholder; set a real secret "
                    "(or environment=development for local use)"
                )
            if self.environment == "production" and len(secret) < 32:
                raise ValueError("jwt_secret must be at least 32 characters in production")
        elif not self.jwt_public_key:
            raise ValueError("jwt_public_key is required when jwt_algorithm is RS256")
        return self

    @property
    def jwt_key(self) -> str:
        """The key tokens are verified with."""
        if self.jwt_algorithm == "RS256":
            return self.jwt_public_key or ""
        return self.jwt_secret.get_secret_value() if self.jwt_secret else DEV_JWT_SECRET
