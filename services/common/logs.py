"""Structured JSON logs to stdout: one object per line, request id attached."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from services.common.requestid import current_request_id
from services.common.tracing import current_ids

_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON line; extra fields given via ``extra=`` are kept."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        """Render the record."""
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "service": self.service,
            "msg": record.getMessage(),
        }
        request_id = current_request_id.get()
        if request_id:
            entry["request_id"] = request_id
        ids = current_ids()
        if ids is not None:  # tracing on, inside a span: find the trace from the log line
            entry["trace_id"], entry["span_id"] = ids
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every logger's records to stdout as JSON lines (idempotent)."""
    # The line carries none of what the logging module gathers by default for every
    # record: where the call was made (a walk up the stack), thread, process and task.
    # Skipping them is the logging documentation's own optimisation ("Optimization"); it
    # was about a quarter of the per-request log line's cost (docs/ml.md, benchmark).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Framework access logs would duplicate our own request line.
    for noisy in ("gunicorn.access", "sanic.access"):
        logging.getLogger(noisy).disabled = True


def log_request(
    logger: logging.Logger,
    *,
    method: str,
    route: str,
    status: int,
    duration: float,
) -> None:
    """The one log line per request: id, route template, status, duration."""
    logger.info(
        "request",
        extra={
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(duration * 1000, 2),
        },
    )
