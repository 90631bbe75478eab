"""Run a Sanic service with N workers from its app factory (the ``serve`` command).

Import this only after ``PROMETHEUS_MULTIPROC_DIR`` is in the environment: the metrics
module it pulls in makes prometheus_client choose its mode at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from types import FrameType
from typing import Any

from sanic import Sanic
from sanic.worker.loader import AppLoader
from sanic.worker.manager import WorkerManager

from services.common.metrics import prepare_multiproc_dir
from services.common.workers import default_workers


def _defer_shutdown_out_of_the_signal_handler() -> None:
    """Work around a shutdown race in Sanic's worker manager (seen with 25.12).

    Sanic's SIGTERM handler terminates the workers from inside the handler, which talks
    to the shared multiprocessing ``Manager`` dict; when the signal lands while the main
    loop is in the middle of its own call on that dict (every 0.1 s), the replies get
    crossed, the manager crashes, the listening socket closes at once and in-flight
    requests fail (about 1 stop in 20 under load). Here the handler only wakes the
    monitor loop; the shutdown then runs in the main loop. A second signal still takes
    Sanic's own kill path.

    Upstream: signal handling in the worker manager is sanic-org/sanic#2997 (signals
    mishandled around worker start and stop, still open), with the proposed fix
    sanic-org/sanic#3063 (not merged); neither moves the shutdown out of the handler, so
    this race is not fixed upstream as of 25.12. tests/unit/common/test_sanic_runner.py
    fails when an upgrade changes the handler (the patch may be unnecessary) or the
    monitor loop the patch relies on (the patch would be wrong).
    """
    if getattr(WorkerManager, "_strata_deferred", False):
        return
    original_signal = WorkerManager.shutdown_signal
    original_monitor = WorkerManager.monitor

    def shutdown_signal(self: Any, signum: int, frame: FrameType | None) -> None:
        if self._shutting_down or getattr(self, "_strata_stop_requested", False):
            original_signal(self, signum, frame)  # type: ignore[no-untyped-call]
            return
        self._strata_stop_requested = True
        self.monitor_publisher.send(None)  # a pipe, not the Manager: safe in a handler

    def monitor(self: Any) -> None:
        original_monitor(self)  # type: ignore[no-untyped-call]
        if getattr(self, "_strata_stop_requested", False) and not self._shutting_down:
            self.shutdown()

    WorkerManager.shutdown_signal = shutdown_signal  # type: ignore[method-assign]
    WorkerManager.monitor = monitor  # type: ignore[method-assign]
    WorkerManager._strata_deferred = True  # type: ignore[attr-defined]
    WorkerManager._strata_original_signal = original_signal  # type: ignore[attr-defined]


def serve(
    factory: Callable[[], Sanic[Any, Any]], *, host: str, port: int, workers: int | None
) -> None:
    """Wipe the metrics directory, then serve until SIGTERM/SIGINT.

    Every worker process builds its own app (and its pools) from ``factory`` after the
    fork; nothing created here is shared with them.
    """
    prepare_multiproc_dir()
    _defer_shutdown_out_of_the_signal_handler()
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
