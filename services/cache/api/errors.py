"""The one table from cache-store refusals to problem types (status and slug)."""

from __future__ import annotations

from services.cache import errors
from services.common.problems import Problem, refused

#: Every refusal of the store and the problem it is answered with.
PROBLEMS: dict[type[errors.StoreError], tuple[int, str]] = {
    errors.CounterOverflowError: (409, "counter-overflow"),
    errors.StoreUnavailableError: (503, "store-unavailable"),
}


def problem(error: BaseException) -> Problem | None:
    """The problem a store refusal is answered with; None for anything else."""
    headers = {}
    if isinstance(error, errors.StoreUnavailableError):
        headers["Retry-After"] = str(error.retry_after)
    return refused(error, PROBLEMS, headers)
