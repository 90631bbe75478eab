"""Unexpected errors are described for the log; database error texts are left out."""

from __future__ import annotations

import psycopg2
import pytest
from sqlalchemy.exc import IntegrityError

from services.critical.errorlog import describe


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:  # kept with its traceback
        return caught


def test_an_application_error_keeps_its_message_and_stack() -> None:
    fields = describe(_raised(ValueError("bad arithmetic")))
    assert fields["error"] == "ValueError"
    assert "builtins.ValueError: bad arithmetic" in fields["exc"]
    assert "test_errorlog.py" in fields["exc"]
    assert "sqlstate" not in fields


def test_a_database_error_and_its_cause_lose_their_texts() -> None:
    driver = psycopg2.Error("duplicate key\nDETAIL:  Key (owner)=(secret-owner) already exists.")
    wrapped = IntegrityError("INSERT INTO accounts ...", {"owner": "secret-owner"}, driver)
    try:
        try:
            raise driver
        except psycopg2.Error as exc:
            raise wrapped from exc
    except IntegrityError as caught:
        fields = describe(caught)
    assert "secret-owner" not in str(fields)
    assert fields["exc"].count("message withheld") == 2
    assert "which led to" in fields["exc"]


def _outer(suppress: bool) -> BaseException:
    try:
        try:
            raise KeyError("inner")
        except KeyError:
            if suppress:
                raise RuntimeError("outer") from None
            raise RuntimeError("outer")  # noqa: B904 - the implicit context is the point
    except RuntimeError as caught:
        return caught


@pytest.mark.parametrize("suppress", [True, False])
def test_the_context_is_shown_unless_suppressed(suppress: bool) -> None:
    text = describe(_outer(suppress))["exc"]
    assert "RuntimeError: outer" in text
    assert ("KeyError: 'inner'" in text) is not suppress
