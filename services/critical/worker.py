"""A gthread worker that fails readiness first on SIGTERM, then drains.

gunicorn's own workers stop accepting the moment SIGTERM arrives. On Kubernetes the
endpoint removal lags behind, so this worker raises the app's draining flag (``/readyz``
turns 503), keeps serving for ``drain_seconds``, and only then begins the graceful stop.
"""

from __future__ import annotations

import threading
from types import FrameType
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

from services.common.health import Health


class DrainingThreadWorker(ThreadWorker):  # type: ignore[misc]
    """``ThreadWorker`` with a drain delay between SIGTERM and the graceful stop."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Raise the draining flag now; stop accepting after the configured delay."""
        app: Any = self.wsgi
        health: Health | None = getattr(app, "extensions", {}).get("strata.health")
        settings = getattr(app, "config", {}).get("STRATA_SETTINGS")
        delay = float(getattr(settings, "drain_seconds", 0.0))
        if health is not None:
            health.start_draining()
        if delay <= 0 or not self.alive:
            super().handle_exit(sig, frame)
            return
        timer = threading.Timer(delay, super().handle_exit, args=(sig, frame))
        timer.daemon = True
        timer.start()
