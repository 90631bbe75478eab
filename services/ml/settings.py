"""Settings of the ml service (``STRATA_ML_*``), parsed once at start-up."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import URL

from services.common.settings import ServiceSettings

PREFIX = "STRATA_ML_"


class MlDatabaseSettings(BaseSettings):
    """What reaching the database takes; all ``migrate`` needs (no JWT key required)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="ignore")

    database_host: str = "localhost"
    database_port: int = Field(default=5432, ge=1, le=65535)
    database_name: str = "strata_ml"
    database_user: str = "strata_ml"
    database_password: SecretStr | None = None

    # Per worker process: workers x (pool_size + max_overflow) must fit max_connections.
    pool_size: int = Field(default=5, ge=1, le=100)
    max_overflow: int = Field(default=0, ge=0, le=100)
    pool_timeout: float = Field(default=2.0, gt=0, le=60)
    connect_timeout: float = Field(default=3.0, gt=0, le=60)
    statement_timeout_ms: int = Field(default=30_000, ge=100, le=3_600_000)

    @model_validator(mode="before")
    @classmethod
    def _password_file(cls, data: Any) -> Any:
        """``STRATA_ML_DATABASE_PASSWORD_FILE`` may hold the password (Kubernetes Secret)."""
        path = os.environ.get(f"{PREFIX}DATABASE_PASSWORD_FILE")
        if isinstance(data, dict) and path and not data.get("database_password"):
            data["database_password"] = Path(path).read_text(encoding="utf-8").strip()
        return data

    def database_url(self, driver: str = "asyncpg") -> URL:
        """The SQLAlchemy URL of the ml database (holds the password: never log it)."""
        password = self.database_password.get_secret_value() if self.database_password else None
        return URL.create(
            f"postgresql+{driver}",
            username=self.database_user,
            password=password,
            host=self.database_host,
            port=self.database_port,
            database=self.database_name,
        )


class MlSettings(ServiceSettings, MlDatabaseSettings):
    """Every ``STRATA_ML_*`` variable; see docs/configuration.md (the ml table)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="ignore")

    service_name: str = "ml"
    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int | None = Field(default=None, ge=1, le=64)
    readiness_timeout: float = Field(default=1.0, gt=0, le=30)

    max_document_bytes: int = Field(default=1_048_576, ge=64)
    bulk_max_documents: int = Field(default=10_000, ge=1, le=1_000_000)
    bulk_max_bytes: int = Field(default=33_554_432, ge=1024)
    export_batch_size: int = Field(default=2000, ge=1, le=100_000)
    max_sample: int = Field(default=10_000, ge=1, le=1_000_000)
