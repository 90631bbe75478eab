"""Settings shared by every service, read once from the environment at start-up.

Each service subclasses :class:`ServiceSettings` with its own ``env_prefix``
(``STRATA_CRITICAL_``, ``STRATA_ML_``, ``STRATA_CACHE_``). Secrets may come from
environment variables or from files (``<NAME>_FILE``), as Kubernetes mounts them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlparse

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.common.keys import ASYMMETRIC, check_algorithms, load_public_key

#: The secret the developer CLI mints tokens with; refused outside development.
DEV_JWT_SECRET = "strata-development-secret-change-me-0123456789"  # noqa: S105
Algorithm = Literal["HS256", "RS256", "ES256"]
_PLACEHOLDERS = {"", "changeme", "change-me", "secret", DEV_JWT_SECRET}


def read_secret_files(data: dict[str, Any], prefix: str, names: Iterable[str]) -> None:
    """Fill each of ``names`` missing from ``data`` from the file that ``<PREFIX><NAME>_FILE``
    names, as Kubernetes mounts a Secret (surrounding whitespace stripped)."""
    for name in names:
        path = os.environ.get(f"{prefix}{name}_FILE".upper())
        if path and not data.get(name):
            data[name] = Path(path).read_text(encoding="utf-8").strip()


class ServiceSettings(BaseSettings):
    """Settings every service has. Subclasses set ``model_config`` with their prefix."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    environment: Literal["development", "test", "production"] = "production"
    service_name: str = "strata"
    version: str = Field(default_factory=lambda: os.environ.get("STRATA_VERSION", "0.1.0"))
    revision: str = Field(default_factory=lambda: os.environ.get("STRATA_REVISION", "unknown"))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # JWT verification (docs/auth.md). The complete list of accepted algorithms: HS256 with
    # a shared secret (development), or RS256/ES256 with an identity provider's public key
    # (PEM) or its JWKS URL (production: the service then holds nothing that can sign).
    jwt_algorithms: Annotated[list[Algorithm], NoDecode] = Field(
        default_factory=lambda: list[Algorithm](["HS256"])
    )
    jwt_secret: SecretStr | None = None
    jwt_public_key: str | None = None
    jwt_jwks_url: str | None = None
    jwt_jwks_cache_seconds: float = Field(default=300.0, ge=10, le=86_400)
    jwt_jwks_min_refresh_seconds: float = Field(default=10.0, ge=1, le=3600)
    jwt_jwks_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    jwt_issuer: str | None = None
    jwt_leeway_seconds: int = Field(default=10, ge=0, le=300)

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # NoDecode: a plain comma-separated list in the environment, not JSON.
    cors_allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # gzip for JSON answers from this size up (0 = never), at this zlib level
    # (docs/configuration.md, "Compression").
    gzip_min_bytes: int = Field(default=1024, ge=0)
    gzip_level: int = Field(default=1, ge=1, le=9)
    # /docs: the interactive API reference (Swagger UI, served from the image).
    api_docs: bool = True

    # Shutdown (docs/configuration.md, "Shutdown"): SIGTERM keeps the server answering
    # (readiness 503) for drain_seconds; then it stops accepting and requests in flight get
    # graceful_seconds to finish before they are cut. The same rule for gunicorn and Sanic;
    # the chart checks terminationGracePeriodSeconds against both.
    drain_seconds: float = Field(default=0.0, ge=0, le=120)
    graceful_seconds: int = Field(default=20, ge=1, le=600)

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        """Let ``<PREFIX><FIELD>_FILE`` point at a file holding a secret value."""
        if not isinstance(data, dict):
            return data
        prefix = str(cls.model_config.get("env_prefix", ""))
        read_secret_files(data, prefix, ("jwt_secret", "jwt_public_key", *cls.secret_file_fields()))
        # The single-valued name of earlier releases still counts (never silently ignored).
        legacy = os.environ.get(f"{prefix}JWT_ALGORITHM")
        if legacy and "jwt_algorithms" not in data:
            data["jwt_algorithms"] = legacy
        return data

    @classmethod
    def secret_file_fields(cls) -> tuple[str, ...]:
        """Extra fields a subclass allows to be read from ``*_FILE``."""
        return ()

    @field_validator("jwt_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.startswith("["):
            return [v.strip().upper() for v in value.split(",") if v.strip()]
        return value

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
        check_algorithms(self.jwt_algorithms)
        if set(self.jwt_algorithms) & ASYMMETRIC:
            self._check_asymmetric()
            return self
        if self.jwt_public_key or self.jwt_jwks_url:
            raise ValueError(
                "jwt_public_key and jwt_jwks_url are for RS256/ES256 "
                "(set jwt_algorithms); HS256 verifies with jwt_secret"
            )
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
        if self.environment != "development" and secret in _PLACEHOLDERS:
            raise ValueError(
                "jwt_secret is missing or a placeholder; set a real secret "
                "(or environment=development for local use)"
            )
        if self.environment != "development" and len(secret) < 32:
            raise ValueError("jwt_secret must be at least 32 characters outside development")
        return self

    def _check_asymmetric(self) -> None:
        """RS256/ES256: exactly one public key source, and no signing secret at all."""
        if self.jwt_secret is not None:
            raise ValueError(
                "jwt_secret must not be set with RS256/ES256: the service verifies with a "
                "public key and must hold nothing that can sign tokens"
            )
        if self.jwt_public_key and self.jwt_jwks_url:
            raise ValueError("set jwt_public_key or jwt_jwks_url, not both")
        if self.jwt_public_key:
            load_public_key(self.jwt_public_key, self.jwt_algorithms)  # raises with the reason
            return
        if not self.jwt_jwks_url:
            raise ValueError(
                f"jwt_algorithms {','.join(self.jwt_algorithms)} needs jwt_public_key (PEM, or "
                "JWT_PUBLIC_KEY_FILE) or jwt_jwks_url (the identity provider's JWKS)"
            )
        url = urlparse(self.jwt_jwks_url)
        allowed = ("https",) if self.environment != "development" else ("https", "http")
        if url.scheme not in allowed or not url.hostname:
            raise ValueError(
                "jwt_jwks_url must be an https:// URL (http:// only in development): "
                "whoever can alter the key set can sign any token"
            )

    @property
    def jwt_key(self) -> str:
        """The HS256 secret (the development secret in development when none is set)."""
        return self.jwt_secret.get_secret_value() if self.jwt_secret else DEV_JWT_SECRET
