"""Settings of the ml service (``STRATA_ML_*``), parsed once at start-up."""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import URL

from services.common.dbtls import DatabaseTlsSettings
from services.common.settings import ServiceSettings, read_secret_files

PREFIX = "STRATA_ML_"
MIB = 1024 * 1024
_PASSWORD_FIELDS = ("database_password", "migration_password")


class MlDatabaseSettings(DatabaseTlsSettings, BaseSettings):
    """What reaching the database takes; all ``migrate`` needs (no JWT key required).

    TLS: ``DATABASE_SSLMODE``, ``DATABASE_SSLROOTCERT`` (and a client certificate), with
    libpq's meaning (services/common/dbtls.py), given to asyncpg as its ``ssl=`` argument.

    Two roles: the service connects as ``database_user``, a runtime role that may only read
    and write rows; ``migrate`` connects as ``migration_user``, the owner of the tables, and
    creates or updates the runtime role and its grants.
    """

    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="ignore")

    database_host: str = "localhost"
    database_port: int = Field(default=5432, ge=1, le=65535)
    database_name: str = "strata_ml"
    database_user: str = "strata_ml_app"
    database_password: SecretStr | None = None
    migration_user: str = "strata_ml"
    migration_password: SecretStr | None = None
    # Reads (GET, list, count, sample, export) go here when set: the PostgreSQL read-only
    # Service (replicas). They may trail the primary by the replication lag.
    read_database_host: str = ""

    # Per worker process: workers x (pool_size + max_overflow) must fit max_connections.
    pool_size: int = Field(default=5, ge=1, le=100)
    max_overflow: int = Field(default=0, ge=0, le=100)
    pool_timeout: float = Field(default=2.0, gt=0, le=60)
    connect_timeout: float = Field(default=3.0, gt=0, le=60)
    statement_timeout_ms: int = Field(default=30_000, ge=100, le=3_600_000)

    @model_validator(mode="before")
    @classmethod
    def _password_files(cls, data: Any) -> Any:
        """``STRATA_ML_DATABASE_PASSWORD_FILE`` / ``..._MIGRATION_PASSWORD_FILE`` (Secrets)."""
        if isinstance(data, dict):
            read_secret_files(data, PREFIX, _PASSWORD_FIELDS)
        return data

    def database_url(
        self, driver: str = "asyncpg", *, migration: bool = False, read: bool = False
    ) -> URL:
        """The SQLAlchemy URL of the ml database (holds the password: never log it).

        The runtime role's by default; the owner role's when ``migration``. ``read`` gives
        the replicas' address when ``read_database_host`` is set.
        """
        user, secret = (
            (self.migration_user, self.migration_password)
            if migration
            else (self.database_user, self.database_password)
        )
        return URL.create(
            f"postgresql+{driver}",
            username=user,
            password=secret.get_secret_value() if secret else None,
            host=(self.read_database_host or self.database_host) if read else self.database_host,
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
    max_sample: int = Field(default=10_000, ge=1, le=1_000_000)
    # A page or a sample stops adding documents once their data reached this many bytes.
    page_max_bytes: int = Field(default=4 * MIB, ge=1024, le=256 * MIB)

    # Exports: rows per cursor fetch and bytes of lines held at once (lines up to
    # bytes/rows come with a fetch, larger documents are rendered by id in byte-cut
    # queries), how many may run at once per worker (each holds a pooled connection), what
    # a refused one is told, and how long a client may leave the stream unread.
    export_batch_size: int = Field(default=2000, ge=1, le=100_000)
    export_batch_bytes: int = Field(default=4 * MIB, ge=1024, le=256 * MIB)
    export_max_concurrent: int = Field(default=2, ge=1, le=100)
    export_retry_after: int = Field(default=5, ge=1, le=3600)
    export_send_timeout: float = Field(default=30.0, gt=0, le=3600)
    # Parquet exports: rows per row group (a row group also ends at export_batch_bytes).
    export_parquet_row_group_rows: int = Field(default=16_384, ge=1, le=1_048_576)
    # Snapshots held for sharded exports (documents:export?snapshot=): how long each is
    # held, and how many one worker holds at once (each on its own connection, outside
    # the pool: workers x export_snapshots_max more connections at most).
    export_snapshot_ttl: int = Field(default=600, ge=1, le=86_400)
    export_snapshots_max: int = Field(default=2, ge=1, le=32)

    @property
    def page_first_rows(self) -> int:
        """Documents a page or sample renders first: those that fit at the largest size."""
        return max(1, self.page_max_bytes // self.max_document_bytes)

    @property
    def export_first_rows(self) -> int:
        """Rows of an export's first batch: those that fit at the largest document size."""
        return max(
            1, min(self.export_batch_size, self.export_batch_bytes // self.max_document_bytes)
        )

    @model_validator(mode="after")
    def _exports_leave_connections(self) -> Self:
        """Exports never take every pooled connection: other requests keep at least one."""
        if self.export_max_concurrent >= self.pool_size + self.max_overflow:
            raise ValueError(
                "export_max_concurrent must be below pool_size + max_overflow "
                f"({self.pool_size + self.max_overflow}): exports would starve other requests"
            )
        return self
