"""Bulk body validation: every line checked before anything is written."""

from __future__ import annotations

import pytest

from services.common.problems import Problem
from services.ml.ingest import parse_bulk


def parse(body: bytes, ctype: str | None = "application/x-ndjson", **limits: int) -> list[str]:
    return parse_bulk(
        body,
        ctype,
        max_documents=limits.get("docs", 100),
        max_document_bytes=limits.get("size", 1000),
    )


def test_ndjson_keeps_text_and_order_and_skips_blank_lines() -> None:
    body = b'{"a": 1}\r\n\n  {"b": [2]}\n'
    assert parse(body) == ['{"a": 1}', '{"b": [2]}']


def test_array_body() -> None:
    assert parse(b'[{"a":1},{"b":2}]', "application/json") == ['{"a":1}', '{"b":2}']
    assert parse(b"[]", "application/json") == []


def test_sniffs_when_no_content_type() -> None:
    assert parse(b' [{"a":1}]', None) == ['{"a":1}']
    assert parse(b'{"a":1}\n{"a":2}', None) == ['{"a":1}', '{"a":2}']


def test_every_bad_line_is_named() -> None:
    body = b'{"ok": 1}\n[1]\n{"ok": 2}\n{broken\n"s"\n'
    with pytest.raises(Problem) as exc:
        parse(body)
    assert exc.value.status == 422
    assert "line 2" in exc.value.detail
    assert exc.value.errors is not None
    assert [e["loc"] for e in exc.value.errors] == [
        ["body", "line", 2],
        ["body", "line", 4],
        ["body", "line", 5],
    ]


def test_array_items_are_named_by_index() -> None:
    with pytest.raises(Problem) as exc:
        parse(b'[{"a": 1}, 2]', "application/json")
    assert exc.value.errors is not None
    assert exc.value.errors[0]["loc"] == ["body", "item", 1]


@pytest.mark.parametrize(
    ("body", "ctype", "status"),
    [
        (b"", "application/x-ndjson", 400),
        (b"  \n", "application/x-ndjson", 400),
        (b"[1,", "application/json", 400),
        (b'{"a": 1}', "application/json", 422),
        (b'{"a": 1}', "text/plain", 415),
    ],
)
def test_bad_bodies(body: bytes, ctype: str, status: int) -> None:
    with pytest.raises(Problem) as exc:
        parse(body, ctype)
    assert exc.value.status == status


def test_limits() -> None:
    with pytest.raises(Problem) as exc:
        parse(b'{"a":1}\n' * 4, docs=3)
    assert exc.value.status == 413
    with pytest.raises(Problem) as exc:
        parse(b"[" + b",".join([b'{"a":1}'] * 4) + b"]", "application/json", docs=3)
    assert exc.value.status == 413
    with pytest.raises(Problem) as exc:
        parse(b'{"a": "' + b"x" * 50 + b'"}', size=20)
    assert exc.value.status == 422
    with pytest.raises(Problem) as exc:
        parse(b'{"a": "\\u0000"}')
    assert exc.value.errors is not None
    assert "NUL" in exc.value.errors[0]["msg"]


def test_reports_at_most_twenty_errors() -> None:
    with pytest.raises(Problem) as exc:
        parse(b"1\n" * 50)
    assert exc.value.errors is not None
    assert len(exc.value.errors) == 20
