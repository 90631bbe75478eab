"""Every refusal a domain layer defines is in its service's one table at the edge."""

from __future__ import annotations

import uuid

import pytest

from services.cache import errors as cache_errors
from services.cache.api import errors as cache_edge
from services.critical import errors as critical_errors
from services.critical import problem_types as critical_types
from services.critical.api import errors as critical_edge
from services.ml import errors as ml_errors
from services.ml.api import errors as ml_edge


def _subclasses(base: type[Exception]) -> set[type[Exception]]:
    found: set[type[Exception]] = set()
    for cls in base.__subclasses__():
        found |= {cls, *_subclasses(cls)}
    return found


@pytest.mark.parametrize(
    ("base", "table"),
    [
        (critical_errors.LedgerError, critical_types.PROBLEMS),
        (ml_errors.StoreError, ml_edge.PROBLEMS),
        (cache_errors.StoreError, cache_edge.PROBLEMS),
    ],
)
def test_every_refusal_has_a_problem_type(base: type[Exception], table: object) -> None:
    assert _subclasses(base) == set(table)  # type: ignore[call-overload]


def test_refusals_keep_their_words_and_headers() -> None:
    stale = ml_edge.problem(ml_errors.VersionMismatchError(7))
    assert stale is not None
    assert (stale.status, stale.slug) == (412, "version-mismatch")
    assert stale.detail == "document version is 7"
    assert stale.headers == {"ETag": '"7"'}
    down = cache_edge.problem(cache_errors.StoreUnavailableError(3))
    assert down is not None and (down.status, down.headers) == (503, {"Retry-After": "3"})
    assert ml_edge.problem(ValueError("not a refusal")) is None
    broke = critical_edge.problem(critical_errors.InsufficientFundsError(uuid.UUID(int=1)))
    assert (broke.status, broke.slug) == (409, "insufficient-funds")
    assert broke.detail == f"account {uuid.UUID(int=1)} has insufficient funds"
