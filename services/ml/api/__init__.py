"""The ml HTTP API: one module per resource under ``/v1``."""

from __future__ import annotations

from services.common.endpoint import Endpoint
from services.ml.api import bulk, collections, documents, export

#: Every ``/v1`` endpoint, each declared once beside its handler.
ENDPOINTS: tuple[Endpoint, ...] = (
    *collections.routes.endpoints,
    *documents.routes.endpoints,
    *bulk.routes.endpoints,
    *export.routes.endpoints,
)
#: ``{id}`` is ``doc_id`` in handlers and route templates (metrics labels).
SEGMENTS = {"id": "<doc_id:str>"}
