"""The Sanic shutdown patch (services/common/sanic_runner.py) against the installed Sanic.

Both tests run Sanic's own WorkerManager code on a manager without worker processes. The
first fails when an upgrade stops shutting the workers down inside the signal handler
(the patch may then be unnecessary); the second when the pieces the patch relies on no
longer stop the workers from the monitor loop (the patch would then be wrong).
"""

from __future__ import annotations

import multiprocessing
import signal
from typing import Any

from sanic.worker.manager import WorkerManager

from services.common import sanic_runner


def _manager() -> Any:
    """A WorkerManager with no workers, its monitor pipe, and no ack to wait for."""
    manager: Any = WorkerManager.__new__(WorkerManager)
    manager.transient, manager.durable = {}, {}
    manager._shutting_down = False
    manager.monitor_publisher, manager.monitor_subscriber = multiprocessing.Pipe()
    manager.wait_for_ack = lambda: None
    return manager


def test_sanic_still_stops_the_workers_inside_its_signal_handler() -> None:
    # The race the patch works around (upstream: sanic-org/sanic#2997, #3063): the
    # handler itself terminates the workers. If this fails, Sanic changed that path:
    # check whether the patch is still needed before keeping it.
    original = getattr(WorkerManager, "_strata_original_signal", WorkerManager.shutdown_signal)
    manager = _manager()
    original(manager, signal.SIGTERM, None)
    assert manager._shutting_down, "Sanic no longer shuts down inside the signal handler"


def test_the_patched_handler_only_wakes_the_monitor_which_stops_the_workers() -> None:
    sanic_runner._defer_shutdown_out_of_the_signal_handler()
    manager = _manager()
    manager.shutdown_signal(signal.SIGTERM, None)
    assert not manager._shutting_down  # nothing terminated from inside the handler
    assert manager.monitor_subscriber.poll(1)  # the wake-up is there: monitor() returns
    manager.monitor()  # Sanic's own loop reads the wake-up, then the patch shuts down
    assert manager._shutting_down
