"""Settings of the critical service (``STRATA_CRITICAL_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict
from sqlalchemy.engine import URL

from services.common.settings import ServiceSettings
from services.common.workers import default_workers


class CriticalSettings(ServiceSettings):
    """Everything the ledger service reads from the environment."""

    model_config = SettingsConfigDict(env_prefix="STRATA_CRITICAL_", frozen=True, extra="ignore")

    service_name: str = "critical"
    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default_factory=default_workers, ge=1, le=64)
    threads: int = Field(default=4, ge=1, le=64)
    graceful_timeout: int = Field(default=20, ge=1, le=600)

    database_host: str = "localhost"
    database_port: int = Field(default=5432, ge=1, le=65535)
    database_name: str = "strata_critical"
    database_user: str = "strata_app"
    database_password: SecretStr = SecretStr("")
    migration_user: str = "strata_owner"
    migration_password: SecretStr = SecretStr("")
    database_sslmode: str = "prefer"

    pool_size: int = Field(default=5, ge=1, le=100)
    max_overflow: int = Field(default=0, ge=0, le=100)
    pool_timeout: float = Field(default=2.0, gt=0, le=60)
    connect_timeout: int = Field(default=2, ge=1, le=60)
    statement_timeout_ms: int = Field(default=5000, ge=100, le=600_000)

    @classmethod
    def secret_file_fields(cls) -> tuple[str, ...]:
        """Database passwords may be mounted as files."""
        return ("database_password", "migration_password")

    def url(self, *, migration: bool = False) -> URL:
        """SQLAlchemy URL for the runtime role, or for the owner role when ``migration``."""
        user, password = (
            (self.migration_user, self.migration_password)
            if migration
            else (self.database_user, self.database_password)
        )
        return URL.create(
            "postgresql+psycopg2",
            username=user,
            password=password.get_secret_value() or None,
            host=self.database_host,
            port=self.database_port,
            database=self.database_name,
            query={"sslmode": self.database_sslmode},
        )


class MigrationSettings(CriticalSettings):
    """Settings of the ``migrate`` command: the database only, no token key needed."""

    @classmethod
    def verifies_tokens(cls) -> bool:
        """Migrations verify no tokens."""
        return False
