"""The ml tables: collections, and one documents table whose ``data`` is JSONB.

New document shapes never need a migration: everything a client sends lives in
``data``. Two indexes serve the read paths: a GIN index (``jsonb_path_ops``, smaller and
faster than the default opclass for ``@>``) for containment filters, and a B-tree on
``(collection_id, created_at, id)`` for keyset pages and ordered exports.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, cast

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    String,
    Table,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.orm import TYPE_ANNOTATION_MAP, new_metadata

# clock_timestamp(), not now(): the rows of one bulk COPY get increasing times, so the
# (created_at, id) order of a collection is its insertion order.
Timestamp = Annotated[
    datetime, mapped_column(DateTime(timezone=True), server_default=func.clock_timestamp())
]
BigId = Annotated[int, mapped_column(BigInteger)]


class Base(DeclarativeBase):
    """Declarative base with stable constraint names."""

    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Collection(Base):
    """A named set of documents."""

    __tablename__ = "ml_collections"

    id: Mapped[BigId] = mapped_column(Identity(always=True), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    created_at: Mapped[Timestamp]


class Document(Base):
    """One JSON document; ``version`` increases on every write (``If-Match``)."""

    __tablename__ = "ml_documents"

    collection_id: Mapped[BigId] = mapped_column(
        ForeignKey("ml_collections.id", ondelete="CASCADE"), primary_key=True
    )
    # Collation "C": byte order, the same whatever the database locale (keyset paging).
    id: Mapped[str] = mapped_column(String(128, collation="C"), primary_key=True)
    data: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(server_default="1")
    created_at: Mapped[Timestamp]
    updated_at: Mapped[Timestamp]

    __table_args__ = (
        Index(
            "ix_ml_documents_data",
            "data",
            postgresql_using="gin",
            postgresql_ops={"data": "jsonb_path_ops"},
        ),
        Index("ix_ml_documents_keyset", "collection_id", "created_at", "id"),
    )


collections = cast(Table, Collection.__table__)
documents = cast(Table, Document.__table__)
