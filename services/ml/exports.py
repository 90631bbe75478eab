"""The export budget of one worker: how many exports may stream at once, and refusals.

An export holds a pooled connection for as long as its client reads, so exports get
their own budget in front of the shared pool (``EXPORT_MAX_CONCURRENT`` per worker,
always below the pool's size): the other requests keep the rest of the pool however
many clients export, and however slowly they read. One over the budget is refused at
once, before it takes a connection, with 429 ``too-many-exports`` and ``Retry-After``.

Why 429 and not 503: the service is healthy and answering; the refusal is back-pressure
on a kind of request, like the Kubernetes API server's in-flight limit (429 with
``Retry-After``). A 503 means ``store-unavailable`` here, and 5xx answers count against
the error-rate alerts, which exports waiting their turn must not trip.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from services.common.problems import Problem

TOO_MANY_EXPORTS = "too-many-exports"


class ClientStalledError(Exception):
    """The client left the stream unread past the send deadline."""


def too_many_exports(limit: int, retry_after: int) -> Problem:
    """429 ``too-many-exports`` with ``Retry-After``."""
    return Problem(
        429,
        "too-many-exports",
        f"this worker is already streaming {limit} exports; retry after {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


class ExportSlots:
    """At most ``limit`` exports at once in this worker (one event loop: a counter suffices)."""

    def __init__(self, limit: int, retry_after: int) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self.in_use = 0

    @contextmanager
    def take(self) -> Iterator[None]:
        """Hold a slot for the ``with`` block, or raise the 429 when none is free."""
        if self.in_use >= self.limit:
            raise too_many_exports(self.limit, self.retry_after)
        self.in_use += 1
        try:
            yield
        finally:
            self.in_use -= 1
