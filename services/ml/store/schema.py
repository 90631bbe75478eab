"""``python -m services.ml migrate``: create the ml tables and indexes if missing.

Document shapes live in JSONB, so the schema itself rarely changes; ``create_all`` with
``checkfirst`` is idempotent, and a transaction-scoped advisory lock makes concurrent
runs (several pods starting at once, a Helm hook racing an init container) safe.
"""

from __future__ import annotations

from sqlalchemy import text

from services.ml.models import Base
from services.ml.settings import MlDatabaseSettings
from services.ml.store.engine import create_engine

# A fixed key: every migrator of this schema takes the same lock.
ADVISORY_LOCK_KEY = 0x5354_524D_4C  # "STRML"


async def migrate(settings: MlDatabaseSettings) -> list[str]:
    """Create missing tables and indexes under the advisory lock; returns the table names."""
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
            )
            await conn.run_sync(Base.metadata.create_all, checkfirst=True)
    finally:
        await engine.dispose()
    return sorted(Base.metadata.tables)
