"""The cache service's problem types: the one table from cache-store refusals to
problems, and the problems its handlers raise themselves. The OpenAPI document's list is
built from both (:func:`services.common.problems.catalogue`)."""

from __future__ import annotations

from services.cache import errors
from services.common.problems import Problem, Refusal, catalogue, refused

#: Every refusal of the store and the problem it is answered with.
PROBLEMS: dict[type[errors.StoreError], Refusal] = {
    errors.CounterOverflowError: Refusal(
        409, "counter-overflow", "the increment would leave the signed 64-bit range"
    ),
    errors.StoreUnavailableError: Refusal(503, "store-unavailable"),
}

#: The problems raised by the handlers (and the value encoder), not by the store.
RAISED: tuple[Refusal, ...] = (
    Refusal(404, "key-not-found", "no value (or counter) is stored under this key"),
    Refusal(412, "key-exists", "If-None-Match: * and a value is already stored under this key"),
    Refusal(413, "value-too-large", "a value encodes to more than MAX_VALUE_BYTES of JSON"),
)

#: Every problem type the cache service answers: slug -> (status, meaning).
PROBLEM_TYPES = catalogue(RAISED, PROBLEMS.values())


def problem(error: BaseException) -> Problem | None:
    """The problem a store refusal is answered with; None for anything else."""
    headers = {}
    if isinstance(error, errors.StoreUnavailableError):
        headers["Retry-After"] = str(error.retry_after)
    return refused(error, PROBLEMS, headers)
