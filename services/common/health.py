"""Liveness and readiness, with a draining flag that SIGTERM raises.

``/livez`` never touches a dependency. ``/readyz`` runs the service's store checks
with a short timeout and answers 503 from the moment the process starts draining, so
Kubernetes stops routing to it before the server shuts down.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger(__name__)

LIVE_BODY: dict[str, Any] = {"status": "ok"}


class Health:
    """Per-process health state."""

    def __init__(self) -> None:
        self._draining = threading.Event()

    @property
    def draining(self) -> bool:
        """True once shutdown has begun."""
        return self._draining.is_set()

    def start_draining(self) -> None:
        """Make readiness fail from now on."""
        if not self._draining.is_set():
            logger.info("draining: readiness now fails")
        self._draining.set()

    def readiness(self, checks: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """Status and body for ``/readyz`` from check results (``"ok"`` or an error text)."""
        results = dict(checks)
        if self.draining:
            results["draining"] = "shutting down"
        ok = all(value == "ok" for value in results.values())
        return (200 if ok else 503), {"status": "ok" if ok else "unavailable", "checks": results}
