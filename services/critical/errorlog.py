"""What the log says about an unexpected error, without the data the error may carry.

A database error's text holds values: SQLAlchemy appends the bound parameters (hidden by
``hide_parameters`` on the engine), and PostgreSQL's own message and ``DETAIL`` quote
them (``Key (owner, currency)=(alice, EUR) already exists``, ``invalid input syntax for
type uuid: "..."``, ``Failing row contains (...)``), so owner names, references and
token subjects would reach the logs. For database errors the log keeps the SQLSTATE, the
names of the constraint, table, column and type involved, and the stack; never the text.
"""

from __future__ import annotations

import traceback
from typing import Any

import psycopg2
from sqlalchemy.exc import StatementError

_WITHHELD = "message withheld: database errors quote the values they refuse"
_MAX_MESSAGE = 500


def _database_error(exc: BaseException) -> psycopg2.Error | None:
    """The driver error behind ``exc`` when ``exc`` is a database error."""
    if isinstance(exc, psycopg2.Error):
        return exc
    if isinstance(exc, StatementError):
        orig = exc.orig
        return orig if isinstance(orig, psycopg2.Error) else None
    return None


def _is_database_error(exc: BaseException) -> bool:
    return isinstance(exc, StatementError | psycopg2.Error)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes, outermost last (as Python prints them)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return chain[::-1]


def _summary(exc: BaseException) -> str:
    name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    if not _is_database_error(exc):
        return f"{name}: {str(exc)[:_MAX_MESSAGE]}"
    driver = _database_error(exc)
    code = getattr(driver, "pgcode", None) or "unknown"
    return f"{name}: SQLSTATE {code} ({_WITHHELD})"


def safe_traceback(exc: BaseException) -> str:
    """Python's traceback of ``exc`` and its causes, database error messages left out."""
    parts = []
    for link in _chain(exc):
        frames = "".join(traceback.format_tb(link.__traceback__))
        parts.append(f"Traceback (most recent call last):\n{frames}{_summary(link)}\n")
    return "\nwhich led to:\n\n".join(parts)


def describe(exc: BaseException) -> dict[str, Any]:
    """Log fields for ``exc``: its type, the safe traceback, and the database's diagnostics."""
    fields: dict[str, Any] = {"error": type(exc).__name__, "exc": safe_traceback(exc)}
    driver = next(
        (found for link in _chain(exc) if (found := _database_error(link)) is not None), None
    )
    if driver is not None:
        diag = driver.diag
        fields["sqlstate"] = driver.pgcode
        for key, value in (
            ("constraint", diag.constraint_name),
            ("schema", diag.schema_name),
            ("table", diag.table_name),
            ("column", diag.column_name),
            ("datatype", diag.datatype_name),
        ):
            if value:
                fields[key] = value
    return fields
