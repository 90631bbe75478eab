"""Key validation, body parsing and value limits."""

from __future__ import annotations

from typing import TypeVar

import pytest
from pydantic import BaseModel

from services.cache.schemas import (
    IncrRequest,
    MgetRequest,
    PutValue,
    check_batch,
    check_key,
    encode_value,
    path_key,
)
from services.common.endpoint import Body
from services.common.jsonbody import parse_json
from services.common.problems import Problem

M = TypeVar("M", bound=BaseModel)


def parse_body(model: type[M], body: bytes, media: str | None) -> M:
    """A body as the Sanic glue reads it: parsed, then validated against the model."""
    return Body(model, lambda: parse_json(body, media))()


@pytest.mark.parametrize("key", ["a", "x" * 512, "a:b/c?d#e%f", "é" * 256, "✓", "emoji-🙂"])
def test_valid_keys(key: str) -> None:
    assert check_key(key, ["k"]) == key


@pytest.mark.parametrize(
    "key",
    ["", "a b", "a\tb", "a\nb", "\x00", "\x7f", "x" * 513, "é" * 257, "a\u00a0b", "a\u2028b",
     "a\u200bb"],
)  # fmt: skip
def test_invalid_keys_are_422_at_the_given_location(key: str) -> None:
    with pytest.raises(Problem) as caught:
        check_key(key, ["body", "keys", 3])
    assert caught.value.status == 422
    assert caught.value.slug == "validation-failed"
    assert caught.value.errors is not None
    assert caught.value.errors[0]["loc"] == ["body", "keys", 3]


@pytest.mark.parametrize(
    ("raw", "key"),
    [("a%2Fb", "a/b"), ("%C3%A9t%C3%A9", "été"), ("plain", "plain"), ("100%25", "100%")],
)
def test_path_keys_are_percent_decoded(raw: str, key: str) -> None:
    assert path_key(raw) == key


@pytest.mark.parametrize("raw", ["%FF", "a%20b", "%0A"])
def test_bad_path_keys(raw: str) -> None:
    with pytest.raises(Problem) as caught:
        path_key(raw)
    assert caught.value.errors is not None
    assert caught.value.errors[0]["loc"] == ["path", "key"]


def test_encode_value_is_compact_json_and_enforces_the_limit() -> None:
    assert encode_value({"a": [1, None]}, 100, ["v"]) == b'{"a":[1,null]}'
    assert encode_value("x" * 8, 10, ["v"]) == b'"xxxxxxxx"'
    with pytest.raises(Problem) as caught:
        encode_value("x" * 9, 10, ["body", "value"])
    assert (caught.value.status, caught.value.slug) == (413, "value-too-large")


def test_parse_body_maps_errors_to_400_415_422() -> None:
    assert parse_body(PutValue, b'{"value": [1], "ttl": 5}', "application/json").ttl == 5
    cases = [
        (b"{", "application/json", 400),
        (b"", None, 400),
        (b'{"value": 1}', "text/plain", 415),
        (b'{"value": 1, "ttl": 0}', None, 422),
        (b'{"value": 1, "ttl": true}', None, 422),
        (b'{"ttl": 1}', None, 422),
    ]
    for body, media, status in cases:
        with pytest.raises(Problem) as caught:
            parse_body(PutValue, body, media)
        assert caught.value.status == status, body
    with pytest.raises(Problem) as caught:
        parse_body(PutValue, b'{"value": 1, "ttl": "5"}', None)
    assert caught.value.errors is not None
    assert caught.value.errors[0]["loc"] == ["body", "ttl"]


def test_value_null_is_a_value() -> None:
    assert parse_body(PutValue, b'{"value": null}', None).value is None


def test_increment_bounds() -> None:
    assert IncrRequest().by == 1
    assert parse_body(IncrRequest, b'{"by": -9223372036854775808}', None).by == -(2**63)
    with pytest.raises(Problem):
        parse_body(IncrRequest, b'{"by": 9223372036854775808}', None)


def test_batches() -> None:
    assert parse_body(MgetRequest, b'{"keys": ["a"]}', None).keys == ["a"]
    with pytest.raises(Problem):
        parse_body(MgetRequest, b'{"keys": []}', None)
    check_batch(10, 10, ["body", "keys"])
    with pytest.raises(Problem) as caught:
        check_batch(11, 10, ["body", "keys"])
    assert caught.value.status == 422
