"""The document-read SQL: every value a bind parameter, projection built in SQL."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import exc

from services.ml.params import DocumentQuery, fields
from services.ml.store.engine import is_unavailable, sqlstate
from services.ml.store.export import Budget, cursor_sql, render_sql
from services.ml.store.query import Args, bounded, build, next_rows, within_budget


def test_plain_query() -> None:
    args = Args()
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
    args = Args()
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


def test_export_cursor_sends_small_lines_and_ids_of_large_ones() -> None:
    args = Args()
    sql = cursor_sql("books", 3, DocumentQuery(), args, Budget(50, 4096))
    assert args.values == [3, '"books"', 81]  # 4096 bytes over 50 rows: lines up to 81
    assert "collection_id = $1::bigint" in sql
    assert """'{"id":' || to_json(id)::text || ',"collection":' || $2::text""" in sql
    # not rendered at all when already too large stored; measured exactly otherwise
    assert "CASE WHEN pg_column_size(data) <= $3::int THEN '{" in sql
    assert "line IS NULL OR octet_length(line) > $3::int AS big" in sql
    assert "CASE WHEN big THEN id END AS id" in sql
    assert "CASE WHEN NOT big THEN line END AS line" in sql
    # one ordered pass; OFFSET 0 keeps the line from being rendered once per use
    assert sql.endswith("ORDER BY created_at, id OFFSET 0) i) b")


def test_export_cursor_renders_projections_and_measures_them() -> None:
    args = Args()
    sql = cursor_sql("books", 3, DocumentQuery(fields=fields("a")), args, Budget(50, 4096))
    assert "pg_column_size" not in sql  # a projection may be far smaller than the document
    assert "octet_length(line) > $5::int" in sql


def test_export_renders_large_documents_by_id_in_order_within_the_budget() -> None:
    args = Args()
    sql = render_sql("books", 3, DocumentQuery(), args, ["b", "a"], 4096)
    assert args.values == ['"books"', ["b", "a"], 3, 4096]
    assert "FROM unnest($2::text[]) WITH ORDINALITY AS k(key, ord)" in sql
    assert 'JOIN ml_documents d ON d.collection_id = $3::bigint AND d.id = k.key COLLATE "C"' in sql
    assert sql.endswith("WHERE before < $4::bigint ORDER BY ord")


def test_budget_per_line() -> None:
    assert Budget(2000, 4 * 1024 * 1024).per_line == 2097
    assert Budget(10, 5).per_line == 1


def test_within_budget_keeps_the_rows_that_start_under_it() -> None:
    sql = within_budget("SELECT k, line FROM t ORDER BY k LIMIT 11", "k", "k", "$1")
    assert sql.startswith("SELECT k, convert_to(line, 'UTF8') AS line FROM (")
    assert "sum(octet_length(line)) OVER w - octet_length(line) AS before" in sql
    assert sql.endswith("WHERE before < $1 ORDER BY k")


def test_bounded_keeps_rows_under_the_budget_and_looks_one_ahead() -> None:
    sql = bounded("SELECT k, line FROM t ORDER BY k LIMIT 11", "k", "k", "$1", "$2")
    assert "before < $1 AND rn <= $2 AS keep" in sql
    assert "CASE WHEN keep THEN convert_to(line, 'UTF8') END AS line" in sql
    assert "lag(octet_length(line), 1, 0) OVER w AS prev_len" in sql
    assert sql.endswith("WHERE before_prev < $1 ORDER BY k")


@pytest.mark.parametrize(
    ("size", "count", "budget", "cap", "expected"),
    [
        (4_500_000, 5, 4 * 1024 * 1024, 2000, 5),  # ~0.9 MB lines: 4 fit, the 5th crosses
        (500_000, 2000, 4 * 1024 * 1024, 2000, 2000),  # small lines: the row cap
        (500_000, 2000, 4 * 1024 * 1024, 300, 300),  # ... or what is left to read
        (0, 0, 1024, 50, 50),  # nothing seen (empty lines): the cap
        (10_000_000, 1, 1024, 50, 1),  # one huge line: one row at a time
    ],
)
def test_next_rows_fills_the_budget_at_the_average_size(
    size: int, count: int, budget: int, cap: int, expected: int
) -> None:
    assert next_rows(size, count, budget, cap) == expected


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
