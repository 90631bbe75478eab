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


def test_ndjson_keeps_order_and_skips_blank_lines() -> None:
    body = b'{"a": 1}\r\n\n  {"b": [2]}\n'
    assert parse(body) == ['{"a":1}', '{"b":[2]}']


def test_every_path_stores_the_same_text() -> None:
    """A line is stored as the service serialises it, as a single create would store it."""
    doc = b'{"n": 1.50, "big": 123456789012345678901234567890, "e": 1E2, "s": "\\u00e9"}'
    stored = '{"n":1.5,"big":123456789012345678901234567890,"e":100.0,"s":"\u00e9"}'
    assert parse(doc) == [stored]
    assert parse(b"[" + doc + b"]", "application/json") == [stored]


def test_integers_stay_exact_and_absurd_ones_are_named() -> None:
    exact = b'{"a": -9223372036854775809, "b": [18446744073709551616]}'
    assert parse(exact) == ['{"a":-9223372036854775809,"b":[18446744073709551616]}']
    with pytest.raises(Problem) as exc:
        parse(b'{"ok": 1}\n{"a": ' + b"9" * 310 + b"}", size=5000)
    assert exc.value.errors is not None
    assert exc.value.errors[0]["loc"] == ["body", "line", 2]
    assert "beyond the range of a double" in exc.value.errors[0]["msg"]
    assert len(parse(b'{"a": ' + b"9" * 308 + b"}", size=5000)[0]) == len('{"a":}') + 308


@pytest.mark.parametrize("depth", [129, 300, 1023])
def test_documents_too_deep_to_serve_are_refused_on_both_forms(depth: int) -> None:
    deep = b'{"a": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
    for body, ctype, loc in (
        (deep, "application/x-ndjson", ["body", "line", 1]),
        (b"[" + deep + b"]", "application/json", ["body", "item", 0]),
    ):
        if depth == 1023 and ctype == "application/json":
            continue  # the array adds a level: beyond what JSON parsers read (400)
        with pytest.raises(Problem) as exc:
            parse(body, ctype, size=10_000)
        assert exc.value.status == 422
        assert exc.value.errors is not None
        assert exc.value.errors[0]["loc"] == loc
        assert "nest deeper than 128" in exc.value.errors[0]["msg"]


def test_128_levels_are_fine() -> None:
    ok = b'{"a": ' + b"[" * 127 + b"]" * 127 + b"}"
    assert len(parse(ok, size=10_000)) == 1


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
    # A backslash followed by the text "u0000" is no NUL.
    assert parse(b'{"a": "\\\\u0000"}') == ['{"a":"\\\\u0000"}']


def test_reports_at_most_twenty_errors() -> None:
    with pytest.raises(Problem) as exc:
        parse(b"1\n" * 50)
    assert exc.value.errors is not None
    assert len(exc.value.errors) == 20
