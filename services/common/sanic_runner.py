"""Run a Sanic service with N workers from its app factory (the ``serve`` command).

Import this only after ``PROMETHEUS_MULTIPROC_DIR`` is in the environment: the metrics
module it pulls in makes prometheus_client choose its mode at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sanic import Sanic
from sanic.worker.loader import AppLoader

from services.common.metrics import prepare_multiproc_dir
from services.common.workers import default_workers


def serve(
    factory: Callable[[], Sanic[Any, Any]], *, host: str, port: int, workers: int | None
) -> None:
    """Wipe the metrics directory, then serve until SIGTERM/SIGINT.

    Every worker process builds its own app (and its pools) from ``factory`` after the
    fork; nothing created here is shared with them.
    """
    prepare_multiproc_dir()
    loader = AppLoader(factory=factory)
    app = loader.load()
    app.prepare(
        host=host,
        port=port,
        workers=workers or default_workers(),
        access_log=False,
        motd=False,
    )
    Sanic.serve(primary=app, app_loader=loader)
