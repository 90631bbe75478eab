"""The ml HTTP API: one blueprint per resource, grouped under ``/v1``."""

from __future__ import annotations

from sanic import Blueprint
from sanic.blueprint_group import BlueprintGroup

from services.ml.api import bulk, collections, documents


def v1() -> BlueprintGroup:
    """Every ml blueprint under ``/v1`` (fresh objects: one app per call)."""
    return Blueprint.group(
        collections.bp.copy("collections_v1"),
        documents.bp.copy("documents_v1"),
        bulk.bp.copy("bulk_v1"),
        url_prefix="/v1",
    )
