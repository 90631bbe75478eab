"""Request and response shapes (pydantic v2); they also produce the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_DOC_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class DocumentIn(BaseModel):
    """``POST .../documents`` body."""

    model_config = ConfigDict(extra="forbid")

    data: dict[str, Any]
    id: str | None = Field(default=None, pattern=_DOC_ID)


class DocumentReplace(BaseModel):
    """``PUT .../documents/{id}`` body."""

    model_config = ConfigDict(extra="forbid")

    data: dict[str, Any]


class Document(BaseModel):
    """A stored document."""

    id: str
    collection: str
    data: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime


class DocumentPage(BaseModel):
    """A keyset page of documents: at most ``limit``, fewer once their data fills the page."""

    items: list[Document]
    next_cursor: str | None


class Collection(BaseModel):
    """A collection (``count`` only on ``GET /v1/collections/{name}``)."""

    name: str
    created_at: datetime
    count: int | None = None


class CollectionPage(BaseModel):
    """A keyset page of collections."""

    items: list[Collection]
    next_cursor: str | None


class BulkResult(BaseModel):
    """What a bulk ingest wrote."""

    inserted: int
    ids: list[str]


class ExportSnapshot(BaseModel):
    """``export:snapshot``: a held snapshot for sharded (or resumed) exports."""

    snapshot: str = Field(description="pass as ?snapshot= to every shard's export")
    collection: str
    expires_at: datetime = Field(description="the snapshot is released then")


class Count(BaseModel):
    """``documents:count``."""

    count: int


class Sample(BaseModel):
    """``documents:sample``: the seed makes it reproducible.

    ``next_cursor`` is set when the sample's data filled the response before ``n``
    documents: it fetches the rest of the same sample.
    """

    items: list[Document]
    seed: str
    next_cursor: str | None = None
