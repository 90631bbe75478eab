"""Ledger refusals answered at the HTTP edge, through the one table of
:mod:`services.critical.problem_types`."""

from __future__ import annotations

from typing import Any

from services.common.problems import Problem, refused
from services.critical import errors
from services.critical.problem_types import PROBLEMS


def problem(refusal: errors.LedgerError) -> Problem:
    """The problem a refusal is answered with."""
    found = refused(refusal, PROBLEMS)
    if found is None:  # a refusal the table forgot: tests/unit/common/test_refusals.py
        raise TypeError(f"no problem type for {type(refusal).__name__}") from refusal
    return found


def answer(refusal: errors.LedgerError) -> tuple[int, dict[str, Any]]:
    """A refusal as the (status, body) an idempotency key stores."""
    found = problem(refusal)
    return found.status, found.to_dict()
