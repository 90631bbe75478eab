"""gunicorn configuration for the critical service (``gunicorn -c`` this file).

Settings are validated here, in the master, so a bad configuration fails before any
worker forks. The multiprocess metrics directory is wiped at start and a dead worker's
live gauges are released in ``child_exit``.
"""

from __future__ import annotations

import math
from typing import Any

from services.common.metrics import mark_worker_dead, prepare_multiproc_dir
from services.critical import fdlimit
from services.critical.settings import CriticalSettings

_settings = CriticalSettings()
_capacity = fdlimit.plan(_settings.worker_connections)

bind = [f"{_settings.host}:{_settings.port}"]
workers = _settings.workers
worker_class = "services.critical.worker.DrainingThreadWorker"
threads = _settings.threads
# Slow and idle clients wait in each worker's event loop, not in a thread
# (services/critical/intake.py), so a worker holds thousands of connections.
worker_connections = _capacity.connections
# gunicorn counts from SIGTERM, and the worker drains first: requests in flight get
# graceful_seconds after the drain, as in the Sanic services.
graceful_timeout = _settings.graceful_seconds + math.ceil(_settings.drain_seconds)
timeout = 30
keepalive = 5
max_requests = 0
limit_request_line = 8190
limit_request_fields = 100
# X-Forwarded-Proto and friends only from these proxies (none by default), and never
# SCRIPT_NAME or PATH_INFO from anyone: a client could otherwise move routes (e.g. serve
# /metrics under /v1/accounts); headers with "_" are dropped (gunicorn's header_map=drop).
forwarded_allow_ips = _settings.forwarded_allow_ips
forwarder_headers = ""
accesslog = None
# ...and no access-log work per request either (logconfig_dict below would enable it).
logger_class = "services.critical.gunicorn_log.NoAccessLogLogger"
errorlog = "-"
loglevel = _settings.log_level.lower()
worker_tmp_dir = "/tmp"  # noqa: S108 - an emptyDir in containers; the root FS is read-only
proc_name = "strata-critical"
# No runtime control socket: nothing should manage workers but the orchestrator.
control_socket_disable = True


def on_starting(server: Any) -> None:
    """Start with an empty metrics directory: stale files would double-count."""
    prepare_multiproc_dir()
    if _capacity.connections < _settings.worker_connections:
        server.log.warning(
            "open-files limit %d (hard %d) leaves room for %d connections per worker, "
            "not the %d configured: raise the limit (ulimit -n) to serve more",
            _capacity.soft_limit,
            _capacity.hard_limit,
            _capacity.connections,
            _settings.worker_connections,
        )


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone (exited or killed): stop counting its live gauges."""
    mark_worker_dead(worker.pid)


# gunicorn's own records (worker boot/exit) as JSON lines too, like the app's.
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "services.common.logs.JsonFormatter", "service": "critical"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        },
    },
    "root": {"handlers": ["stdout"], "level": _settings.log_level},
    "loggers": {
        "gunicorn.error": {
            "handlers": ["stdout"],
            "level": _settings.log_level,
            "propagate": False,
        },
    },
}
