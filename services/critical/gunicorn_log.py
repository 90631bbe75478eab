"""gunicorn's logger without access-log work when there is no access log.

gunicorn builds every request's access-log atoms (a dict of ~20 fields, a timestamp)
whenever a logging configuration is given, even if the access log is off: ``logconfig_dict``
(JSON lines for gunicorn's own records) made it pay that per request for nothing. The
app writes its own per-request line (services.critical.web).
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger


class NoAccessLogLogger(Logger):  # type: ignore[misc]
    """:class:`gunicorn.glogging.Logger` that skips ``access`` unless ``accesslog`` is set."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """Log the request only when an access log is configured."""
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)
