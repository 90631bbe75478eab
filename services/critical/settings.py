"""Settings of the critical service (``STRATA_CRITICAL_*``)."""

from __future__ import annotations

import ipaddress
import os
from typing import Any, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict
from sqlalchemy.engine import URL

from services.common.dbtls import DatabaseTlsSettings
from services.common.settings import ServiceSettings
from services.common.workers import default_workers


class CriticalSettings(ServiceSettings, DatabaseTlsSettings):
    """Everything the ledger service reads from the environment (TLS to the database:
    ``DATABASE_SSLMODE`` and friends, services/common/dbtls.py)."""

    model_config = SettingsConfigDict(env_prefix="STRATA_CRITICAL_", frozen=True, extra="ignore")

    service_name: str = "critical"
    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default_factory=default_workers, ge=1, le=64)
    threads: int = Field(default=4, ge=1, le=64)
    # Slow clients: each request's head and body must arrive within this from its first
    # byte (408 after), and a client must read a response within it too.
    request_read_timeout: float = Field(default=10.0, gt=0, le=300)
    # Connections one worker holds (gunicorn worker_connections), idle and slow ones
    # included; capped at start-up by the open-files limit (see services/critical/fdlimit.py).
    worker_connections: int = Field(default=4096, ge=16, le=1_000_000)
    # Bytes of partly received requests one worker buffers in all (503 server-busy beyond).
    request_buffer_bytes: int = Field(default=32 * 1_048_576, ge=1_048_576, le=2**34)
    # Proxies whose X-Forwarded-Proto/-Ssl/-Protocol are believed (comma-separated IPs or
    # networks). Empty: none; the service builds no absolute URL, so none is needed.
    forwarded_allow_ips: str = ""

    database_host: str = "localhost"
    database_port: int = Field(default=5432, ge=1, le=65535)
    database_name: str = "strata_critical"
    database_user: str = "strata_app"
    database_password: SecretStr = SecretStr("")
    migration_user: str = "strata_owner"
    migration_password: SecretStr = SecretStr("")

    pool_size: int = Field(default=5, ge=1, le=100)
    max_overflow: int = Field(default=0, ge=0, le=100)
    pool_timeout: float = Field(default=2.0, gt=0, le=60)
    connect_timeout: int = Field(default=2, ge=1, le=60)
    statement_timeout_ms: int = Field(default=5000, ge=100, le=600_000)
    # Deadline of the /readyz database ping, as ml's (a probe must not outwait its timeout).
    readiness_timeout: float = Field(default=1.0, gt=0, le=30)

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        """IP addresses or networks only: ``*`` would let any client forge them."""
        entries = [part.strip() for part in value.split(",") if part.strip()]
        for entry in entries:
            try:
                ipaddress.ip_network(entry)
            except ValueError:
                raise ValueError(
                    f"forwarded_allow_ips: {entry!r} is not an IP address or network"
                ) from None
        return ",".join(entries)

    @model_validator(mode="before")
    @classmethod
    def _legacy_graceful_timeout(cls, data: Any) -> Any:
        """``STRATA_CRITICAL_GRACEFUL_TIMEOUT`` (the name before ``graceful_seconds``, with
        the same meaning) still counts rather than being silently ignored."""
        legacy = os.environ.get("STRATA_CRITICAL_GRACEFUL_TIMEOUT")
        if isinstance(data, dict) and legacy and "graceful_seconds" not in data:
            data["graceful_seconds"] = legacy
        return data

    @model_validator(mode="after")
    def _buffer_holds_a_request(self) -> Self:
        if self.request_buffer_bytes < self.max_body_bytes + 64 * 1024:
            raise ValueError(
                "request_buffer_bytes must hold at least one whole request (max_body_bytes + 65536)"
            )
        return self

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
            query=self.libpq_parameters(),
        )


class MigrationSettings(CriticalSettings):
    """Settings of the ``migrate`` command: the database only, no token key needed."""

    @classmethod
    def verifies_tokens(cls) -> bool:
        """Migrations verify no tokens."""
        return False
