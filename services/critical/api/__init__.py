"""HTTP endpoints of the critical service, one module per resource under ``/v1``."""

from __future__ import annotations

from services.common.endpoint import Endpoint
from services.critical.api import accounts, transfers

#: Every ``/v1`` endpoint, each declared once beside its handler.
ENDPOINTS: tuple[Endpoint, ...] = (*accounts.routes.endpoints, *transfers.routes.endpoints)
