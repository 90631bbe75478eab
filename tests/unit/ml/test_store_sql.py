"""The document-read SQL: every value a bind parameter, projection built in SQL."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import exc

from services.ml.params import DocumentQuery, fields
from services.ml.store.engine import is_unavailable, sqlstate
from services.ml.store.query import _Args, build, export_sql


def test_plain_query() -> None:
    args = _Args()
    data, where = build(7, DocumentQuery(), args)
    assert data == "data"
    assert where == "collection_id = $1::bigint"
    assert args.values == [7]


def test_everything() -> None:
    when = datetime(2024, 1, 1, tzinfo=UTC)
    q = DocumentQuery(
        filter={"a": "'; DROP TABLE x; --"},
        created_after=when,
        created_before=when,
        fields=fields("a,b.c"),
        after=(when, "id"),
    )
    args = _Args()
    data, where = build(1, q, args)
    assert "data @> $2::jsonb" in where
    assert "(created_at, id) > ($5::timestamptz, $6::text)" in where
    assert "DROP" not in where + data  # values only ever travel as parameters
    assert data == (
        "jsonb_build_object($8::text, data #> $7::text[], "
        "$11::text, jsonb_build_object($10::text, data #> $9::text[]))"
    )
    assert args.values[1] == '{"a":"\'; DROP TABLE x; --"}'
    assert args.values[6:] == [["a"], "a", ["b", "c"], "c", "b"]


def test_export_orders_by_keyset() -> None:
    args = _Args()
    sql = export_sql(args.add('"books"', "text"), 3, DocumentQuery(), args)
    assert sql.endswith("ORDER BY created_at, id")
    assert """SELECT '{"id":' || to_json(id)::text || ',"collection":' || $1::text""" in sql
    assert "collection_id = $2::bigint" in sql


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (OSError("refused"), True),
        (TimeoutError(), True),
        (exc.TimeoutError("pool"), True),
        (asyncpg.CannotConnectNowError("starting"), True),
        (asyncpg.QueryCanceledError("statement timeout"), True),
        (asyncpg.AdminShutdownError("shutdown"), True),
        (asyncpg.UniqueViolationError("dup"), False),
        (ValueError("bug"), False),
    ],
)
def test_is_unavailable(error: Exception, unavailable: bool) -> None:
    assert is_unavailable(error) is unavailable


def test_sqlstate_through_wrappers() -> None:
    inner = asyncpg.QueryCanceledError("timeout")
    wrapped = exc.DBAPIError("SELECT 1", None, inner)
    assert sqlstate(wrapped) == "57014"
    assert is_unavailable(wrapped)
