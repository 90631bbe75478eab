"""Database errors reach the log without the data they quote."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import pytest
from asyncpg.exceptions._base import DataError as ArgumentError  # type: ignore[import-untyped]
from sqlalchemy import exc

from services.ml.store.redact import DatabaseError, describe, is_database_error, redacted

SECRET = "canary-4f1c"


def check_violation() -> asyncpg.PostgresError:
    error = asyncpg.CheckViolationError("new row violates check constraint")
    error.sqlstate = "23514"
    error.detail = f'Failing row contains (1, x, {{"secret": "{SECRET}"}}).'
    error.table_name = "ml_documents"
    error.constraint_name = "no_secrets"
    return error


def test_detail_and_message_of_a_data_error_are_left_out() -> None:
    error = check_violation()
    assert SECRET in str(error)  # asyncpg's own text quotes the row
    text = describe(error)
    assert SECRET not in text
    assert text == (
        "CheckViolationError; SQLSTATE 23514; table ml_documents; constraint no_secrets"
    )


def test_sqlalchemy_parameters_and_wrapped_detail_are_left_out() -> None:
    wrapped = exc.IntegrityError(
        "INSERT INTO ml_documents ...", {"data": SECRET}, check_violation()
    )
    assert SECRET in str(wrapped)
    assert is_database_error(wrapped)
    assert SECRET not in describe(wrapped)
    assert "SQLSTATE 23514" in describe(wrapped)


def test_asyncpg_argument_errors_are_left_out() -> None:
    # asyncpg's client-side error (an InterfaceError) when it cannot encode an argument
    error = ArgumentError(f"invalid input for query argument $1: '{SECRET}'")
    assert is_database_error(error)
    assert describe(error) == "DataError"


def test_messages_about_the_sql_itself_are_kept() -> None:
    error = asyncpg.InsufficientPrivilegeError("permission denied for table ml_documents")
    error.sqlstate = "42501"
    assert describe(error).endswith("permission denied for table ml_documents")


def test_redacted_keeps_the_traceback() -> None:
    with pytest.raises(asyncpg.PostgresError) as raised:
        raise check_violation()
    clean = redacted(raised.value)
    assert isinstance(clean, DatabaseError)
    assert clean.__traceback__ is raised.value.__traceback__
    assert SECRET not in str(clean)


def test_other_errors_are_not_database_errors() -> None:
    assert not is_database_error(ValueError(SECRET))
