"""``python -m services.ml migrate``: tables, indexes and the runtime role's grants.

Runs as the owner role (``STRATA_ML_MIGRATION_USER``). Document shapes live in JSONB, so
the schema itself rarely changes; ``create_all`` with ``checkfirst`` is idempotent. One
transaction holds a transaction-scoped advisory lock, creates what is missing, then
creates or updates the runtime role and regrants it (:mod:`services.ml.store.roles`), so
concurrent runs (several pods starting at once) queue and the last finds nothing to do.
"""

from __future__ import annotations

from sqlalchemy import text

from services.ml.models import Base
from services.ml.settings import MlDatabaseSettings
from services.ml.store.engine import create_engine
from services.ml.store.roles import RoleError, ensure_runtime_role

# A fixed key: every migrator of this schema takes the same lock.
ADVISORY_LOCK_KEY = 0x5354_524D_4C  # "STRML"


async def migrate(settings: MlDatabaseSettings) -> list[str]:
    """Create missing tables and indexes and grant the runtime role; returns the tables."""
    if settings.database_user == settings.migration_user:
        raise RoleError("runtime and migration roles must differ")
    engine = create_engine(settings, migration=True)
    try:
        async with engine.begin() as conn:
            # Waiting for another migrator, or building an index, may outlast the
            # service's statement timeout; neither should fail the migration.
            await conn.execute(text("SET LOCAL statement_timeout = 0"))
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
            )
            await conn.run_sync(Base.metadata.create_all, checkfirst=True)
            fairy = await conn.get_raw_connection()
            await ensure_runtime_role(fairy.driver_connection, settings)
    finally:
        await engine.dispose()
    return sorted(Base.metadata.tables)
