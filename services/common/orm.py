"""What the two PostgreSQL services' declarative bases share (SQLAlchemy 2).

Each service keeps its own ``Base`` (its own MetaData: Alembic must see only its tables),
built from these: stable constraint names, and JSON objects stored as JSONB. Imported only
by the services that have SQLAlchemy (critical, ml).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.dialects.postgresql import JSONB

#: Constraint and index names Alembic can rely on (they never depend on the dialect).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
#: ``Mapped[dict[str, Any]]`` is a JSONB column.
TYPE_ANNOTATION_MAP: dict[Any, Any] = {dict[str, Any]: JSONB}


def new_metadata() -> MetaData:
    """A fresh MetaData with the shared naming convention (one per service)."""
    return MetaData(naming_convention=NAMING_CONVENTION)
