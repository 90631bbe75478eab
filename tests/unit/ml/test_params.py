"""Path, query and header parsing; RFC 7396 merge patch."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.common.cursor import encode_cursor
from services.common.problems import Problem
from services.ml import params
from services.ml.data import checked_document


def loc_of(exc: pytest.ExceptionInfo[Problem]) -> list[Any]:
    assert exc.value.errors is not None
    return list(exc.value.errors[0]["loc"])


@pytest.mark.parametrize("name", ["a", "books", "img_2024-v1", "a" + "b" * 62])
def test_good_collection_names(name: str) -> None:
    assert params.collection_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "1a", "a.b", "a" * 64, "_a", "a b", "ä"])
def test_bad_collection_names(name: str) -> None:
    with pytest.raises(Problem) as exc:
        params.collection_name(name)
    assert exc.value.status == 422
    assert loc_of(exc) == ["path", "name"]


@pytest.mark.parametrize("value", ["x", "img-001.png", "a:b", "A" * 128])
def test_good_document_ids(value: str) -> None:
    assert params.document_id(value) == value


@pytest.mark.parametrize("value", ["", "-x", ".x", "a b", "a/b", "A" * 129])
def test_bad_document_ids(value: str) -> None:
    with pytest.raises(Problem):
        params.document_id(value)


def test_json_filter() -> None:
    assert params.json_filter(None) is None
    assert params.json_filter("") is None
    assert params.json_filter('{"a": {"b": [1]}}') == {"a": {"b": [1]}}
    for bad in ("[1]", '"a"', "1", "{", '{"a": "\\u0000"}'):
        with pytest.raises(Problem) as exc:
            params.json_filter(bad)
        assert loc_of(exc) == ["query", "filter"]


def test_timestamp() -> None:
    assert params.timestamp("2024-05-01T10:00:00Z", "t") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    # A "+" decoded as a space by a sloppy client still parses.
    assert params.timestamp("2024-05-01T10:00:00 00:00", "t") == datetime(
        2024, 5, 1, 10, tzinfo=UTC
    )
    for bad in ("yesterday", "2024-05-01T10:00:00", "2024-13-01T00:00:00Z"):
        with pytest.raises(Problem):
            params.timestamp(bad, "t")


def test_fields_tree() -> None:
    assert params.fields(None) is None
    assert params.fields("a,b.c,b.d.e") == {"a": None, "b": {"c": None, "d": {"e": None}}}
    # A whole key wins over its sub-paths, whichever comes first.
    assert params.fields("a.b,a") == {"a": None}
    assert params.fields("a,a.b") == {"a": None}
    # A NUL can be in no JSONB key, and PostgreSQL refuses it in a text parameter (a 500).
    for bad in ("a,,b", "a..b", ".a", "a.", ",".join(f"f{i}" for i in range(65)), "a\x00"):
        with pytest.raises(Problem):
            params.fields(bad)


@pytest.mark.parametrize(("raw", "value"), [("3", 3), ('"3"', 3), ('W/"12"', 12), (None, None)])
def test_if_match(raw: str | None, value: int | None) -> None:
    assert params.if_match(raw) == value


@pytest.mark.parametrize("raw", ["", "x", "-1", "1.0", "*", "9" * 19, "²", '"٣"'])
def test_bad_if_match(raw: str) -> None:
    with pytest.raises(Problem):
        params.if_match(raw)


def test_cursor_round_trip() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert params.document_cursor(params.next_document_cursor(when, "id-1")) == (when, "id-1")
    for bad in ("!!", "e30", "eyJ0IjoieCIsImkiOiJ5In0"):
        with pytest.raises(Problem) as exc:
            params.document_cursor(bad)
        assert exc.value.slug == "invalid-cursor"


def test_document_rules() -> None:
    assert checked_document({"a": "x" * 10}, 100) == b'{"a":"xxxxxxxxxx"}'
    assert checked_document({"n": 2**70}, 100) == b'{"n":1180591620717411303424}'
    with pytest.raises(Problem) as exc:
        checked_document({"a": "x" * 100}, 100)
    assert exc.value.status == 413
    for bad in ({"a": "\x00"}, {"\x00": 1}, nested(129)):
        with pytest.raises(Problem) as exc:
            checked_document(bad, 10_000)
        assert exc.value.status == 422
        assert loc_of(exc) == ["body", "data"]
    checked_document(nested(128), 10_000)


def nested(depth: int) -> dict[str, Any]:
    """An object whose arrays and objects nest ``depth`` levels (itself included)."""
    value: Any = []
    for _ in range(depth - 2):
        value = [value]
    return {"a": value}


def test_timestamps_out_of_range_in_utc_are_refused() -> None:
    for bad in ("0000-01-01T00:00:00Z", "10000-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59",
                "0001-01-01T00:00:00+23:59"):  # fmt: skip
        with pytest.raises(Problem) as exc:
            params.timestamp(bad, "created_after")
        assert loc_of(exc) == ["query", "created_after"]
    assert params.timestamp("2024-05-01T12:00:00+02:00", "t") == datetime(
        2024, 5, 1, 10, tzinfo=UTC
    )


@pytest.mark.parametrize("raw", ["²", "٣", "1_0", " 1", "+1", "0", "11", "9" * 5000])
def test_positive_int_takes_ascii_digits_in_range(raw: str) -> None:
    with pytest.raises(Problem) as exc:
        params.positive_int(raw, "n", 1, 10)
    assert loc_of(exc) == ["query", "n"]


def test_filter_messages_say_what_is_wrong() -> None:
    with pytest.raises(Problem) as exc:
        params.json_filter('{"a":')
    assert exc.value.errors is not None
    assert exc.value.errors[0]["msg"].startswith("is not valid JSON")
    with pytest.raises(Problem) as exc:
        params.json_filter("[1]")
    assert exc.value.errors is not None
    assert exc.value.errors[0]["msg"] == "must be a JSON object"
    assert params.json_filter('{"n": 18446744073709551617}') == {"n": 2**64 + 1}


def test_crafted_cursors_are_invalid_not_errors() -> None:
    from services.common.cursor import encode_cursor

    for key in (
        {"t": "0001-01-01T00:00:00+14:00", "i": "x"},
        {"t": "2024-01-01T00:00:00", "i": "x"},
        {"t": "2024-01-01T00:00:00+00:00", "i": "a\x00b"},
        {"t": 5, "i": "x"},
        {"t": "2024-01-01T00:00:00+00:00", "i": 7},
    ):
        with pytest.raises(Problem) as exc:
            params.document_cursor(encode_cursor(key))
        assert exc.value.slug == "invalid-cursor"


# RFC 7396, appendix A: (target, patch, result)
RFC_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_EXAMPLES)
def test_merge_patch_rfc7396(target: Any, patch: Any, result: Any) -> None:
    original = repr(target)
    assert params.merge_patch(target, patch) == result
    assert repr(target) == original  # the target is not mutated


RANK = "0123456789abcdef0123456789abcdef"


def test_sample_cursor_round_trip() -> None:
    raw = params.next_sample_cursor("seed-1", RANK, "doc-7", 3)
    assert params.sample_cursor(raw, None, 10) == params.SampleCursor("seed-1", RANK, "doc-7", 3)
    assert params.sample_cursor(raw, "seed-1", 4).served == 3


@pytest.mark.parametrize(
    ("key", "seed", "n"),
    [
        ({"s": "seed-1", "r": RANK, "i": "doc-7", "k": 3}, "other-seed", 10),  # another sample
        ({"s": "seed-1", "r": RANK, "i": "doc-7", "k": 3}, None, 3),  # nothing left of n
        ({"s": "seed-1", "r": RANK, "i": "doc-7", "k": 0}, None, 10),
        ({"s": "seed-1", "r": RANK, "i": "doc-7", "k": True}, None, 10),
        ({"s": "seed-1", "r": RANK, "i": "doc-7", "k": "3"}, None, 10),
        ({"s": "seed-1", "r": RANK.upper(), "i": "doc-7", "k": 3}, None, 10),
        ({"s": "seed-1", "r": RANK, "i": "bad id!", "k": 3}, None, 10),
        ({"s": "", "r": RANK, "i": "doc-7", "k": 3}, None, 10),
        ({"s": "x" * 129, "r": RANK, "i": "doc-7", "k": 3}, None, 10),
        ({"r": RANK, "i": "doc-7", "k": 3}, None, 10),
    ],
)
def test_sample_cursor_refuses_what_it_did_not_make(
    key: dict[str, object], seed: str | None, n: int
) -> None:
    with pytest.raises(Problem) as raised:
        params.sample_cursor(encode_cursor(key), seed, n)
    assert (raised.value.status, raised.value.slug) == (400, "invalid-cursor")
