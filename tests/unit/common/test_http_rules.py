"""Exact JSON numbers, nesting limits, query-string rules, metric labels, 405 and CORS."""

from __future__ import annotations

import orjson
import pytest

from services.common import problems
from services.common.cors import cors_headers
from services.common.cursor import parse_limit
from services.common.jsonbody import MAX_DEPTH, dumps_value, loads, parse_json, too_deep
from services.common.metrics import Metrics, method_label
from services.common.problems import Problem
from services.common.query import check_query


@pytest.mark.parametrize(
    "number",
    [2**53 + 1, 2**63 - 1, -(2**63), 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**300, -(10**308)],
)
def test_integers_of_any_size_round_trip_exactly(number: int) -> None:
    text = orjson.dumps({"a": [1, "12345678901234567890"]})[:-1] + f',"n":{number}}}'.encode()
    value = loads(text)
    assert value["n"] == number
    assert isinstance(value["n"], int)
    assert dumps_value(value) == text
    assert parse_json(text, "application/json")["n"] == number


def test_orjson_alone_would_round_them() -> None:
    """Why jsonbody exists: without it, 2**64 reads back as a float."""
    assert orjson.loads(b"18446744073709551616") == pytest.approx(2.0**64)
    assert isinstance(orjson.loads(b"18446744073709551616"), float)
    assert loads(b"18446744073709551616") == 2**64


def test_doubles_stay_doubles_and_must_be_finite() -> None:
    assert loads(b"[1.5, 1e20, 0.1]") == [1.5, 1e20, 0.1]
    for text in (b"1e400", b"-1e400", b"9" * 309, b"NaN", b"Infinity"):
        with pytest.raises(Problem) as info:
            parse_json(text)
        assert info.value.status == 400


def test_messages_name_what_is_wrong() -> None:
    for body, words in (
        (b'{"a": "caf\xe9"}', "not UTF-8"),
        (b"[" + b"9" * 320 + b"]", "beyond the range of a double"),
        (b'{"a":', "not valid JSON"),
    ):
        with pytest.raises(Problem) as info:
            parse_json(body, "application/json")
        assert words in info.value.detail


def _nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(("depth", "deep"), [(1, False), (MAX_DEPTH, False), (MAX_DEPTH + 1, True)])
def test_nesting_depth(depth: int, deep: bool) -> None:
    value = {"k": _nested(depth - 1)} if depth > 1 else {}
    assert too_deep(value, dumps_value(value)) is deep


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    value = {"s": "[" * 500}
    assert too_deep(value, dumps_value(value)) is False


def test_values_too_deep_for_orjson_still_serialise() -> None:
    value = _nested(400)
    assert dumps_value(value) == b"[" * 400 + b"]" * 400


def test_unknown_and_repeated_query_parameters_are_named() -> None:
    check_query({"limit": ["1"]}, ("limit", "cursor"))
    check_query({}, ())
    with pytest.raises(Problem) as info:
        check_query({"limt": ["1"], "cursor": ["a", "b"]}, ("limit", "cursor"))
    assert info.value.status == 422
    assert info.value.errors is not None
    assert [e["loc"] for e in info.value.errors] == [["query", "limt"], ["query", "cursor"]]
    assert "takes cursor, limit" in info.value.errors[0]["msg"]


@pytest.mark.parametrize("raw", ["²", "٣", "1_0", " 5", "+5", "9" * 5000])
def test_limit_takes_ascii_digits_only(raw: str) -> None:
    with pytest.raises(Problem):
        parse_limit(raw)


def test_unknown_methods_share_one_metric_label() -> None:
    assert method_label("GET") == "GET"
    assert method_label("PATCH") == "PATCH"
    assert method_label("FOO") == "other"
    assert method_label("get") == "other"
    metrics = Metrics("unit")
    for i in range(50):
        metrics.request_started(f"M{i}")
        metrics.request_finished(f"M{i}", "/x", 405, 0.001)
    text = metrics.render()[0].decode()
    assert 'method="other"' in text
    assert "M1" not in text
    assert 'http_requests_in_progress{method="other",service="unit"} 0.0' in text


def test_an_aborted_request_is_499_not_5xx() -> None:
    aborted = problems.client_closed_request()
    assert aborted.status == 499
    assert aborted.to_dict()["title"] == "Client Closed Request"


def test_every_405_names_allow() -> None:
    assert problems.method_not_allowed(["PUT", "GET", "GET"]).headers == {"Allow": "GET, PUT"}
    assert problems.method_not_allowed([]).headers == {"Allow": ""}


def test_browsers_may_read_the_headers_clients_act_on() -> None:
    simple = cors_headers("https://a.example", ["https://a.example"], preflight=False)
    exposed = {h.strip() for h in simple["Access-Control-Expose-Headers"].split(",")}
    assert {"ETag", "Idempotent-Replayed", "Retry-After", "Location", "X-Request-ID"} <= exposed
    preflight = cors_headers("https://a.example", ["https://a.example"], preflight=True)
    asked = {h.strip().lower() for h in preflight["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "if-match", "idempotency-key"} <= asked
