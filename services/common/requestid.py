"""Request ids: echoed from ``X-Request-ID`` when sane, generated otherwise."""

from __future__ import annotations

import os
import re
from contextvars import ContextVar

HEADER = "X-Request-ID"
_SAFE = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")

#: The current request's id, for log records emitted anywhere during the request.
current_request_id: ContextVar[str | None] = ContextVar("strata_request_id", default=None)


def choose_request_id(incoming: str | None) -> str:
    """Keep a client's id if it is short and printable (it ends up in logs), else mint one."""
    if incoming and _SAFE.match(incoming):
        return incoming
    return os.urandom(16).hex()  # as unique as uuid4().hex, several times cheaper
