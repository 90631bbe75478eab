"""What the cache store refuses, in its own terms: no HTTP status is decided here.

The HTTP edge (``services.cache.api.errors``) maps every class to its problem type in one
table.
"""

from __future__ import annotations


class StoreError(Exception):
    """A request the cache store refuses; ``str(error)`` says why, for the client."""


class StoreUnavailableError(StoreError):
    """Redis did not answer within the configured timeouts; retry after ``retry_after`` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("the cache store is unavailable; retry later")
        self.retry_after = retry_after


class CounterOverflowError(StoreError):
    """An increment would leave the signed 64-bit range."""

    def __init__(self) -> None:
        super().__init__("increment would overflow a 64-bit integer")
