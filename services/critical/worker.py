"""The gunicorn worker: drains on SIGTERM, closes when told, answers bad HTTP as problem+json.

* Requests are received whole in the event loop before a thread serves them, with
  deadlines, so slow clients cannot occupy the threads (services/critical/intake.py).
* gunicorn's own workers stop accepting the moment SIGTERM arrives. On Kubernetes the
  endpoint removal lags behind, so this worker raises the app's draining flag
  (``/readyz`` turns 503), keeps serving for ``drain_seconds``, then stops gracefully.
* gunicorn ignores a ``Connection`` header set by the application and may keep the
  connection after a response whose request body was left unread (a 413), draining it
  for a while and then closing anyway. A response carrying ``Connection: close`` now
  closes the connection, and says so.
* Requests gunicorn itself cannot parse (a control character in a header, a bad request
  line) were answered with an HTML page; they get problem+json like everything else.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from types import FrameType
from typing import Any

from gunicorn import util

from services.common.health import Health
from services.common.metrics import Metrics
from services.common.problems import Problem, internal_error
from services.common.requestid import choose_request_id, current_request_id
from services.critical.intake import IntakeLimits, IntakeThreadWorker
from services.critical.rawresponse import problem_bytes

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# The statuses gunicorn's parser answers with, and the slug each gets.
_SLUGS = {
    400: "bad-request",
    403: "forbidden",
    414: "uri-too-long",
    417: "expectation-failed",
    431: "header-fields-too-large",
    501: "not-implemented",
}


def honour_connection_close(app: WSGIApp) -> WSGIApp:
    """Wrap ``app`` so that its ``Connection: close`` makes gunicorn close the connection."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            for name, value in headers:
                if name.lower() == "connection" and value.lower() == "close":
                    # gunicorn passes its Response's bound start_response.
                    response = getattr(start_response, "__self__", None)
                    force_close = getattr(response, "force_close", None)
                    if callable(force_close):
                        force_close()
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wsgi


class _StatusRecorder:
    """Stands in for the client socket while gunicorn picks the error status and logs it."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def setblocking(self, flag: bool) -> None:
        """Nothing to do: nothing blocks here."""

    def sendall(self, data: bytes) -> None:
        self.data += data

    def status(self) -> int:
        """The status code gunicorn wrote (500 when it wrote nothing readable)."""
        try:
            return int(self.data.split(b" ", 2)[1])
        except (IndexError, ValueError):
            return 500


def error_response(status: int, detail: str, request_id: str) -> bytes:
    """A complete problem+json HTTP response that closes the connection."""
    if status >= 500 and status != 501:
        problem = internal_error()
    else:
        problem = Problem(status, _SLUGS.get(status, "bad-request"), detail[:300])
    return problem_bytes(problem, request_id)


class ConnectionMetrics:
    """The worker's connections, as Prometheus sees them."""

    def __init__(self, metrics: Metrics) -> None:
        self._states = metrics.gauge(
            "strata_http_connections", "Client connections by state.", ["state"]
        ).labels
        self._buffered = metrics.gauge(
            "strata_http_request_buffer_bytes",
            "Bytes of partly received requests held in the workers' event loops.",
        ).labels(metrics.service)
        self._cuts = metrics.counter(
            "strata_http_connections_cut_total",
            "Connections the server closed at a deadline or a limit, by reason.",
            ["reason"],
        ).labels
        self._service = metrics.service

    def connections(self, states: Mapping[str, int], buffered: int) -> None:
        """Publish the number of connections in each state and the bytes they buffer."""
        for state in ("idle", "reading", "busy", "closing"):
            self._states(self._service, state).set(states.get(state, 0))
        self._buffered.set(buffered)

    def cut(self, reason: str) -> None:
        """Count a connection closed for ``reason``."""
        self._cuts(self._service, reason).inc()


class DrainingThreadWorker(IntakeThreadWorker):
    """The intake worker with a drain delay, real ``Connection: close`` and JSON errors."""

    flask_app: Any = None

    def load_wsgi(self) -> None:
        """Load the app, keep it for the drain flag, and serve it through the close hook."""
        super().load_wsgi()
        app: WSGIApp = getattr(self, "wsgi")  # noqa: B009 - set by gunicorn, untyped
        self.flask_app = app
        self.wsgi = honour_connection_close(app)
        metrics: Metrics | None = getattr(app, "extensions", {}).get("strata.metrics")
        if metrics is not None:
            self.observer = ConnectionMetrics(metrics)

    def intake_limits(self) -> IntakeLimits:
        """Deadlines and sizes from the app's settings."""
        settings = getattr(self.flask_app, "config", {}).get("STRATA_SETTINGS")
        if settings is None:
            return super().intake_limits()
        return IntakeLimits(
            read_timeout=settings.request_read_timeout,
            idle_timeout=float(self.cfg.keepalive or settings.request_read_timeout),
            max_body=settings.max_body_bytes,
            buffer_budget=settings.request_buffer_bytes,
            max_line=self.cfg.limit_request_line or 8190,
        )

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Raise the draining flag now; stop accepting after the configured delay."""
        app: Any = self.flask_app
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

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """gunicorn chooses the status and logs; the client gets problem+json."""
        # A fresh id for gunicorn's log line and the answer alike (the thread's last one
        # belongs to another request).
        request_id = choose_request_id(None)
        current_request_id.set(request_id)
        recorder = _StatusRecorder()
        super().handle_error(req, recorder, addr, exc)
        status = recorder.status()
        try:
            util.write_nonblock(client, error_response(status, str(exc), request_id))
        except Exception:  # the client may be gone; nothing else to do
            self.log.debug("Failed to send error message.")
