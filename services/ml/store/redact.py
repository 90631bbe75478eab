"""Database errors without the data they quote, for logs.

A PostgreSQL error can quote the rows it is about: ``DETAIL: Key (id)=(...) already
exists``, ``Failing row contains (...)`` (a whole document), ``invalid input syntax for
type json: "..."``; SQLAlchemy adds the statement's bound parameters; asyncpg's own
``DataError`` quotes the argument it could not encode. None of that may reach a log. A
database error that is not a 503 is re-raised as :class:`DatabaseError`, which keeps the
traceback (where it happened) and names only the error class, the SQLSTATE and the
schema objects involved; the original message is kept only for SQLSTATE classes whose
messages are about the SQL itself (syntax, privileges, transaction state), never data.
"""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import exc

# 0A feature not supported, 25 transaction state, 40 rollback, 42 syntax or access rule.
_MESSAGE_CLASSES = ("0A", "25", "40", "42")
_NAMES = ("schema_name", "table_name", "column_name", "constraint_name", "data_type_name")


class DatabaseError(Exception):
    """A database failure described without document data or bound parameters."""


def is_database_error(error: BaseException) -> bool:
    """Whether ``error`` comes from the driver or SQLAlchemy's statement layer."""
    return isinstance(error, exc.StatementError | asyncpg.PostgresError | asyncpg.InterfaceError)


def _driver_error(error: BaseException) -> BaseException:
    """The driver's exception under SQLAlchemy's wrappers (or ``error`` itself)."""
    seen = error
    for _ in range(5):
        inner = getattr(seen, "orig", None) or getattr(seen, "__cause__", None)
        if inner is None or inner is seen:
            break
        seen = inner
    return seen


def describe(error: BaseException) -> str:
    """``error`` summarised: class, SQLSTATE, object names; no data, no parameters."""
    cause = _driver_error(error)
    code = getattr(cause, "sqlstate", None)
    parts = [type(cause).__name__]
    if isinstance(code, str):
        parts.append(f"SQLSTATE {code}")
    for name in _NAMES:
        value = getattr(cause, name, None)
        if isinstance(value, str) and value:
            parts.append(f"{name.removesuffix('_name')} {value}")
    message = getattr(cause, "message", None) or (cause.args[0] if cause.args else None)
    if isinstance(code, str) and code[:2] in _MESSAGE_CLASSES and isinstance(message, str):
        parts.append(message.splitlines()[0])
    return "; ".join(parts)


def redacted(error: BaseException) -> DatabaseError:
    """A :class:`DatabaseError` for ``error``, carrying its traceback; raise it ``from None``."""
    return DatabaseError(describe(error)).with_traceback(error.__traceback__)
