"""Alembic environment: runs on the connection ``services.critical.migrate`` hands over."""

from __future__ import annotations

from alembic import context

from services.critical.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - always driven by `python -m services.critical migrate`
    raise RuntimeError("run migrations with: python -m services.critical migrate")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    transaction_per_migration=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
