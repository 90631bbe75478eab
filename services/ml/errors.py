"""What the document store refuses, in its own terms: no HTTP status is decided here.

The HTTP edge (``services.ml.api.errors``) maps every class to its problem type in one table.
"""

from __future__ import annotations


class StoreError(Exception):
    """A request the document store refuses; ``str(error)`` says why, for the client."""


class CollectionNotFoundError(StoreError):
    """No collection of that name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"collection {name!r} does not exist")


class DocumentNotFoundError(StoreError):
    """No document of that id in the collection."""

    def __init__(self, doc_id: str) -> None:
        super().__init__(f"document {doc_id!r} does not exist")


class DocumentExistsError(StoreError):
    """A document with that id already exists."""

    def __init__(self, doc_id: str | None) -> None:
        super().__init__(f"document {doc_id!r} already exists")


class VersionMismatchError(StoreError):
    """The expected version is not the document's; ``current`` is."""

    def __init__(self, current: int) -> None:
        super().__init__(f"document version is {current}")
        self.current = current


class StoreUnavailableError(StoreError):
    """PostgreSQL did not answer in time, or is not the primary."""

    def __init__(self) -> None:
        super().__init__("the document store is unavailable; retry later")


class SnapshotGoneError(StoreError):
    """The snapshot a token names is no longer held (expired, released, holder gone)."""

    def __init__(self) -> None:
        super().__init__(
            "the snapshot is no longer held (it expired or its holder stopped); take a new one"
        )


class ResumePointGoneError(StoreError):
    """The document an export resumes after is not in the export's snapshot."""

    def __init__(self, doc_id: str) -> None:
        super().__init__(
            f"document {doc_id!r} is not in this snapshot (deleted since?): resume within "
            "a held snapshot, or export again"
        )
